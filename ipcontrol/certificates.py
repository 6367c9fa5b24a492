"""Offline license certificates, signed with Ed25519.

A certificate is a JSON document::

    {"format": "celaest-license-certificate/1", "alg": "Ed25519", "kid": "...",
     "payload": "<base64url of the JSON claims>", "signature": "<base64url>"}

The signature covers the ``payload`` text exactly as sent, so verifying needs no JSON
canonicalisation. The claims hold the license id, organization, plan, status, effective limits,
its entitlement codes, the machine fingerprint, and ``issued_at``/``expires_at`` with ``ttl_seconds`` between them (a
TTL from system config, never past the license's own expiry); ``kid`` names the signing key and
is repeated inside the claims.

Keys come from ``LICENSE_SIGNING_KEYS`` (``kid:base64url-private-key``, comma-separated, newest
first): the first signs, every listed key verifies, so a key is rotated by putting a new one in
front and dropping the old one after the longest TTL. Without the setting (development only) a
key is generated once under ``CELAEST_VAR_DIR``; production settings refuse to start without it.
"""

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

from licensing.models import License
from licensing.selectors import license_effective_limits, license_entitlements

from .snapshots import LicenseFacts

FORMAT = "celaest-license-certificate/1"
ALGORITHM = "Ed25519"
DEV_KEY_FILENAME = "license-signing-key"


class CertificateInvalid(Exception):
    """A certificate failed verification; ``code`` says why (UPPER_SNAKE)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class SigningKey:
    kid: str
    public_key: Ed25519PublicKey
    private_key: Ed25519PrivateKey | None = None


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def public_key_raw(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id_of(public_key: Ed25519PublicKey) -> str:
    return hashlib.sha256(public_key_raw(public_key)).hexdigest()[:16]


def signing_key_generate() -> str:
    """A new ``kid:base64url-private-key`` entry for ``LICENSE_SIGNING_KEYS``."""
    private_key = Ed25519PrivateKey.generate()
    raw = private_key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return f"{key_id_of(private_key.public_key())}:{b64url_encode(raw)}"


def _development_key() -> str:
    path = Path(settings.VAR_DIR) / DEV_KEY_FILENAME
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:  # O_EXCL: of two processes starting together, one writes and both read the same key
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(descriptor, "w") as handle:
                handle.write(signing_key_generate() + "\n")
    return path.read_text().strip()


@lru_cache(maxsize=1)
def signing_keys() -> tuple[SigningKey, ...]:
    """The configured keys, newest (the signing one) first."""
    entries = [entry.strip() for entry in settings.LICENSE_SIGNING_KEYS if entry.strip()] or [_development_key()]
    keys = []
    for entry in entries:
        kid, _, secret = entry.rpartition(":")
        try:
            private_key = Ed25519PrivateKey.from_private_bytes(b64url_decode(secret))
        except ValueError as exc:
            raise ImproperlyConfigured("LICENSE_SIGNING_KEYS holds a key that is not a base64url Ed25519 key.") from exc
        public_key = private_key.public_key()
        keys.append(SigningKey(kid=kid or key_id_of(public_key), public_key=public_key, private_key=private_key))
    return tuple(keys)


@receiver(setting_changed)
def _reset_keys(*, setting, **kwargs):
    if setting in ("LICENSE_SIGNING_KEYS", "VAR_DIR"):
        signing_keys.cache_clear()


def public_keys_document() -> dict:
    """What ``GET /api/v1/licenses/public-key`` serves (and ``--public-keys`` reads back)."""
    keys = signing_keys()
    return {
        "algorithm": ALGORITHM,
        "current_kid": keys[0].kid,
        "keys": [
            {
                "kid": key.kid,
                "public_key": b64url_encode(public_key_raw(key.public_key)),
                "pem": key.public_key.public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
                ).decode(),
            }
            for key in keys
        ],
    }


def public_keys_from_document(document: dict) -> tuple[SigningKey, ...]:
    try:
        return tuple(
            SigningKey(
                kid=entry["kid"], public_key=Ed25519PublicKey.from_public_bytes(b64url_decode(entry["public_key"]))
            )
            for entry in document["keys"]
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise CertificateInvalid("MALFORMED", "The public key document is not valid.") from exc


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def certificate_issue(*, license: License | LicenseFacts, fingerprint: str, now: datetime, ttl_hours: int) -> dict:
    """Sign a certificate for ``license`` on the machine ``fingerprint``."""
    claims = certificate_claims(license=license, fingerprint=fingerprint, now=now, ttl_hours=ttl_hours)
    return signed_document(FORMAT, claims)


def signed_document(document_format: str, claims: dict) -> dict:
    """``claims`` as a signed document of ``document_format`` (the certificate's layout): the
    signature covers the payload text exactly as sent."""
    key = signing_keys()[0]
    payload = b64url_encode(json.dumps(claims, sort_keys=True, separators=(",", ":")).encode())
    signature = key.private_key.sign(payload.encode())
    return {
        "format": document_format,
        "alg": ALGORITHM,
        "kid": key.kid,
        "payload": payload,
        "signature": b64url_encode(signature),
    }


def certificate_claims(*, license: License | LicenseFacts, fingerprint: str, now: datetime, ttl_hours: int) -> dict:
    """What a certificate (or an encrypted license file) says of ``license`` on ``fingerprint``."""
    key = signing_keys()[0]
    expires_at = now + timedelta(hours=ttl_hours)
    if license.expires_at is not None:
        expires_at = min(expires_at, license.expires_at)
    claims = {
        "kid": key.kid,
        "license_id": str(license.pk),
        "organization_id": str(license.organization_id),
        "plan": license.plan.code,
        "status": license.status,
        "limits": license_effective_limits(license=license),
        "features": license.plan.features,
        "entitlements": list(license_entitlements(license=license)),
        "fingerprint": fingerprint,
        "issued_at": _iso(now),
        "expires_at": _iso(expires_at),
        "ttl_seconds": int((expires_at - now).total_seconds()),
        "license_expires_at": _iso(license.expires_at) if license.expires_at else None,
    }
    return claims


def certificate_verify(
    certificate: dict | str,
    *,
    fingerprint: str,
    now: datetime | None = None,
    keys: tuple[SigningKey, ...] | None = None,
) -> dict:
    """Check a certificate's signature, its machine and its time window; return its claims.
    Raises ``CertificateInvalid`` (MALFORMED, UNKNOWN_KEY, BAD_SIGNATURE, FINGERPRINT_MISMATCH,
    NOT_YET_VALID, EXPIRED)."""
    claims, kid = signed_document_verify(certificate, document_format=FORMAT, keys=keys)
    return claims_check(claims, kid=kid, fingerprint=fingerprint, now=now)


def signed_document_verify(
    document: dict | str, *, document_format: str, keys: tuple[SigningKey, ...] | None = None, signed_text=None
) -> tuple[dict | str, str]:
    """Check the signature of a document of ``document_format`` with one of ``keys``; return its
    payload (decoded JSON claims, or the text ``signed_text`` picks when given) and its key id."""
    keys = keys if keys is not None else signing_keys()
    try:
        if isinstance(document, str):
            document = json.loads(document)
        if document.get("format") != document_format or document.get("alg") != ALGORITHM:
            raise CertificateInvalid("MALFORMED", f"Not a {document_format} document.")
        signature, kid = b64url_decode(document["signature"]), document["kid"]
        text = signed_text(document) if signed_text else document["payload"]
        if not isinstance(text, str) or not isinstance(kid, str):
            raise TypeError("not text")
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise CertificateInvalid("MALFORMED", "The document cannot be read.") from exc
    key = next((key for key in keys if key.kid == kid), None)
    if key is None:
        raise CertificateInvalid("UNKNOWN_KEY", f"No known public key has id {kid!r}.")
    try:
        key.public_key.verify(signature, text.encode())
    except (InvalidSignature, ValueError, AttributeError) as exc:
        raise CertificateInvalid("BAD_SIGNATURE", "The signature does not match the document.") from exc
    if signed_text:
        return text, kid
    try:
        claims = json.loads(b64url_decode(text))
    except (ValueError, TypeError) as exc:
        raise CertificateInvalid("MALFORMED", "The document's claims cannot be read.") from exc
    if not isinstance(claims, dict):
        raise CertificateInvalid("MALFORMED", "The document's claims cannot be read.")
    return claims, kid


def claims_check(claims: dict, *, kid: str, fingerprint: str, now: datetime | None = None) -> dict:
    """A certificate's (or license file's) claims hold for the machine ``fingerprint`` at ``now``."""
    now = now or datetime.now(UTC)
    try:
        issued_at = datetime.fromisoformat(claims["issued_at"].replace("Z", "+00:00"))
        expires_at = datetime.fromisoformat(claims["expires_at"].replace("Z", "+00:00"))
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise CertificateInvalid("MALFORMED", "The certificate's claims cannot be read.") from exc
    if claims.get("kid") != kid:
        raise CertificateInvalid("BAD_SIGNATURE", "The key id inside the certificate does not match.")
    if claims.get("fingerprint") != fingerprint:
        raise CertificateInvalid("FINGERPRINT_MISMATCH", "The certificate was issued for another machine.")
    if now < issued_at - timedelta(minutes=5):  # tolerate a little clock skew
        raise CertificateInvalid("NOT_YET_VALID", "The certificate is not valid yet.")
    if now >= expires_at:
        raise CertificateInvalid("EXPIRED", "The certificate has expired.")
    return claims
