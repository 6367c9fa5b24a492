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

Every document issued for a machine is recorded (``offline_certificate_record``: its license,
machine, expiry and the document's SHA-256, never the document) in the issuance's transaction.
"""

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.dateparse import parse_datetime

from celaest.middleware import current_request_context
from licensing.models import License
from licensing.selectors import license_effective_limits, license_entitlements

from .client import (  # noqa: F401 - the client's primitives, re-exported for the server's callers
    ALGORITHM,
    CERTIFICATE_FORMAT,
    VerificationError,
    b64url_decode,
    b64url_encode,
    public_keys_from_document,
    verify_certificate,
)
from .models import OfflineCertificate
from .snapshots import LicenseFacts

FORMAT = CERTIFICATE_FORMAT
DEV_KEY_FILENAME = "license-signing-key"


#: a certificate (or another signed document) failed verification; ``code`` says why
CertificateInvalid = VerificationError


@dataclass(frozen=True)
class SigningKey:
    kid: str
    public_key: Ed25519PublicKey
    private_key: Ed25519PrivateKey | None = None


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


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def certificate_issue(*, license: License | LicenseFacts, fingerprint: str, now: datetime, ttl_hours: int) -> dict:
    """Sign a certificate for ``license`` on the machine ``fingerprint``."""
    claims = certificate_claims(license=license, fingerprint=fingerprint, now=now, ttl_hours=ttl_hours)
    document = signed_document(FORMAT, claims)
    offline_certificate_record(
        license=license, kind=OfflineCertificate.Kind.CERTIFICATE, claims=claims, document=document
    )
    return document


def document_sha256(document: dict) -> str:
    """The SHA-256 of ``document`` as JSON with its keys sorted and no spaces: how staff recognise a
    file a customer sends back (signatures differ, so two documents never share it)."""
    return hashlib.sha256(json.dumps(document, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def offline_certificate_record(
    *, license: License | LicenseFacts, kind: str, claims: dict, document: dict
) -> OfflineCertificate:
    """Record the issuance of ``document`` (signed from ``claims``) for a machine of ``license``.
    Called where the document is made, so it joins the issuance's transaction (an air-gapped
    activation's); who asked and from where come from the request, if any: the member who uploaded
    an air-gapped request, none when the software checked out with its key."""
    context = current_request_context()
    return OfflineCertificate.objects.create(
        organization_id=license.organization_id,
        license_id=license.pk,
        kind=kind,
        fingerprint=claims["fingerprint"][:255],
        key_id=claims["kid"],
        document_sha256=document_sha256(document),
        issued_at=parse_datetime(claims["issued_at"]),
        expires_at=parse_datetime(claims["expires_at"]),
        issued_by=context.user if context else None,
        ip_address=context.ip_address if context else None,
    )


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
    NOT_YET_VALID, EXPIRED). The checks are the client library's (``ipcontrol.client``)."""
    keys = keys if keys is not None else signing_keys()
    return verify_certificate(certificate, fingerprint=fingerprint, now=now, keys=keys)
