"""Semantic versions (https://semver.org 2.0.0): parsing and a sort key that orders them.

``version_sort_key`` turns a version into a string whose plain text order is semantic
precedence (1.10.0 > 1.9.0, 2.0.0-rc.1 < 2.0.0, alpha < alpha.1 < beta), so the database can
sort and pick the latest release with an index. The key is hex text: digits and ``a-f`` sort
the same under every collation, so the order holds on PostgreSQL whatever its locale, and on
SQLite.
"""

import re
from typing import NamedTuple

from celaest.errors import InvalidInput

_SEMVER_RE = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
# Byte tags of the key. Pre-release identifiers are separated by 0x00, which sorts below every
# identifier character, so "alpha" < "alpha.1" < "alpha-b" as semver requires.
_NUMERIC, _ALPHANUMERIC = b"\x01", b"\x02"
_PRE_RELEASE, _RELEASE = b"\x01", b"\x02"
_SEPARATOR = b"\x00"
_MAX_DIGITS = 18  # every part fits a signed 64-bit column


class SemVer(NamedTuple):
    major: int
    minor: int
    patch: int
    prerelease: str = ""
    build: str = ""

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            text += f"-{self.prerelease}"
        if self.build:
            text += f"+{self.build}"
        return text


def version_parse(text: str) -> SemVer:
    """Parse ``text`` as a semantic version; ``InvalidInput`` if it is not one."""
    match = _SEMVER_RE.match(text or "")
    if match is None:
        raise InvalidInput(
            "Use a semantic version, e.g. 1.10.0 or 2.0.0-rc.1.",
            code="invalid_version",
            details={"version": [f"{text!r} is not a semantic version."]},
        )
    major, minor, patch, prerelease, build = match.groups()
    if max(len(major), len(minor), len(patch)) > _MAX_DIGITS:
        raise InvalidInput(
            "Version numbers are at most 18 digits.", code="invalid_version", details={"version": ["Too large."]}
        )
    return SemVer(int(major), int(minor), int(patch), prerelease or "", build or "")


def validate_version(text: str) -> None:
    """A model/form field validator: a Django ``ValidationError`` unless ``text`` is a version."""
    from django.core.exceptions import ValidationError

    try:
        version_parse(text)
    except InvalidInput as exc:
        raise ValidationError(exc.message, code="invalid_version") from exc


def _number(value: int | str) -> bytes:
    # Length first: numbers without leading zeros compare as their length, then their digits.
    digits = str(value).encode()
    return bytes([len(digits)]) + digits


def version_sort_key(version: SemVer) -> str:
    """The precedence of ``version`` as hex text (build metadata does not count)."""
    key = b"".join(_number(part) for part in (version.major, version.minor, version.patch))
    if version.prerelease:
        identifiers = []
        for identifier in version.prerelease.split("."):
            if identifier.isdigit():
                identifiers.append(_NUMERIC + _number(identifier))
            else:
                identifiers.append(_ALPHANUMERIC + identifier.encode())
        key += _PRE_RELEASE + _SEPARATOR.join(identifiers)
    else:
        key += _RELEASE
    return key.hex()
