"""Licensing without a network: encrypted license files and air-gapped activation.

**Encrypted license file** — for software that must not expose what a license entitles it to.
The certificate's claims (``certificates.certificate_claims``) are encrypted with AES-256-GCM
under a key derived (HKDF-SHA256) from the license key and the machine's fingerprint, then the
ciphertext is signed with the certificate signing key::

    {"format": "celaest-license-file/1", "alg": "Ed25519", "enc": "A256GCM", "kid": "...",
     "nonce": "<base64url, 12 bytes>", "ciphertext": "<base64url>", "signature": "<base64url>"}

The signature covers ``"<format>.<kid>.<nonce>.<ciphertext>"`` (checkable without the license
key); the format and key id are also the AEAD's associated data. Only software holding the
license key, on that machine, reads the claims; anyone with the public keys can tell the file is
genuine.

**Air-gapped activation** — the software writes a request file (``activation_request``), a
person uploads it through the API (``POST /api/v1/licenses/offline-activations``, owners and
admins of the license's organization), which activates the machine as the online endpoint does
and answers a response file signed like a certificate (``celaest-activation-response/1``). Its
claims echo the request's nonce and fingerprint and carry the activation's code and, when the
machine was admitted, its encrypted license file; ``activation_response_verify`` checks it with
the public keys alone.
"""

import json
import secrets
from datetime import UTC, datetime

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.db import transaction

from celaest.errors import InvalidInput, NotFound
from identity.models import Organization
from licensing.models import License
from licensing.services import license_key_normalize

from .certificates import (
    ALGORITHM,
    SigningKey,
    b64url_encode,
    certificate_claims,
    offline_certificate_record,
    signed_document,
    signing_keys,
)
from .client import (  # noqa: F401 - activation_request: what the offline software writes
    LICENSE_FILE_FORMAT,
    REQUEST_FORMAT,
    RESPONSE_FORMAT,
    activation_request,
    license_file_key,
    license_file_signed_text,
    open_license_file,
    verify_activation_response,
)
from .models import OfflineCertificate
from .selectors import ipcontrol_config
from .services import LicenseCheck, license_activate, license_checkout

ENCRYPTION = "A256GCM"
#: the request file's fields and their longest lengths (as the public endpoints take them)
_REQUEST_FIELDS = {"key": 100, "fingerprint": 255, "hostname": 255, "nonce": 128}


def license_file_issue(
    *, license, fingerprint: str, now: datetime, ttl_hours: int, kind: str = OfflineCertificate.Kind.LICENSE_FILE
) -> dict:
    """An encrypted, signed license file for ``license`` on the machine ``fingerprint``, recorded
    as issued (``kind``: checked out by the software, or carried to an air-gapped machine)."""
    claims = certificate_claims(license=license, fingerprint=fingerprint, now=now, ttl_hours=ttl_hours)
    signing_key = signing_keys()[0]
    nonce = secrets.token_bytes(12)
    associated = f"{LICENSE_FILE_FORMAT}.{signing_key.kid}".encode()
    plaintext = json.dumps(claims, sort_keys=True, separators=(",", ":")).encode()
    ciphertext = AESGCM(license_file_key(license.license_key, fingerprint)).encrypt(nonce, plaintext, associated)
    document = {
        "format": LICENSE_FILE_FORMAT,
        "alg": ALGORITHM,
        "enc": ENCRYPTION,
        "kid": signing_key.kid,
        "nonce": b64url_encode(nonce),
        "ciphertext": b64url_encode(ciphertext),
    }
    document["signature"] = b64url_encode(signing_key.private_key.sign(license_file_signed_text(document).encode()))
    offline_certificate_record(license=license, kind=kind, claims=claims, document=document)
    return document


def license_file_verify(
    document: dict | str,
    *,
    license_key: str,
    fingerprint: str,
    now: datetime | None = None,
    keys: tuple[SigningKey, ...] | None = None,
) -> dict:
    """Check a license file's signature, decrypt it with the license key and check its claims as
    a certificate's (``ipcontrol.client.open_license_file``); return them. Raises
    ``CertificateInvalid`` (as ``certificate_verify``, and BAD_KEY when the license key or the
    machine is not the file's)."""
    keys = keys if keys is not None else signing_keys()
    return open_license_file(document, license_key=license_key, fingerprint=fingerprint, now=now, keys=keys)


def license_file_checkout(
    *, key: str, fingerprint: str, hostname: str = "", ip_address: str | None = None, snapshot=None
) -> tuple[LicenseCheck, dict | None]:
    """``license_checkout`` answering an encrypted license file instead of a certificate."""
    return license_checkout(
        key=key, fingerprint=fingerprint, hostname=hostname, ip_address=ip_address, snapshot=snapshot,
        issue=license_file_issue,
    )  # fmt: skip


# --- air-gapped activation -----------------------------------------------------------------------


def activation_request_parse(document) -> dict:
    """The request file's fields, checked; ``InvalidInput`` (400) for anything malformed."""
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError:
            raise InvalidInput("The request file is not JSON.", details={"request": ["Not JSON."]}) from None
    if not isinstance(document, dict) or document.get("format") != REQUEST_FORMAT:
        raise InvalidInput("Not an activation request file.", details={"request": [f"Expected {REQUEST_FORMAT}."]})
    fields, errors = {}, {}
    for name, longest in _REQUEST_FIELDS.items():
        value = document.get(name, "")
        if not isinstance(value, str) or len(value) > longest or (name != "hostname" and not value.strip()):
            errors[name] = [f"A string of at most {longest} characters" + ("" if name == "hostname" else ", not blank")]
        else:
            fields[name] = value.strip()
    if errors:
        raise InvalidInput("The request file is malformed.", details=errors)
    return fields


def offline_activation(*, document, organization: Organization, ip_address: str | None = None) -> dict:
    """Activate the machine a request file names on one of ``organization``'s licenses and answer
    the signed response file. A key of another organization's license is unknown (404)."""
    request = activation_request_parse(document)
    normalized = license_key_normalize(request["key"])
    owned = License.objects.filter(license_key=normalized, organization=organization).exists()
    if not owned:
        raise NotFound("No license of your organization has this key.", code="license_not_found")
    with transaction.atomic():
        check = license_activate(
            key=normalized, fingerprint=request["fingerprint"], hostname=request["hostname"], ip_address=ip_address
        )
        now = datetime.now(UTC)
        license_file = None
        if check.valid:
            ttl_hours = ipcontrol_config().certificate_ttl_hours
            license_file = license_file_issue(
                license=check.license,
                fingerprint=request["fingerprint"],
                now=now,
                ttl_hours=ttl_hours,
                kind=OfflineCertificate.Kind.AIR_GAPPED,
            )
    claims = {
        "request_nonce": request["nonce"],
        "fingerprint": request["fingerprint"],
        "license_id": str(check.license.pk) if check.license is not None else None,
        "valid": check.valid,
        "code": check.code,
        "detail": check.detail,
        "issued_at": now.isoformat().replace("+00:00", "Z"),
        "license_file": license_file,
    }
    return signed_document(RESPONSE_FORMAT, claims)


def activation_response_verify(
    response: dict | str, *, request: dict, keys: tuple[SigningKey, ...] | None = None
) -> dict:
    """What the offline software checks of the response file (``ipcontrol.client``)."""
    return verify_activation_response(response, request=request, keys=keys if keys is not None else signing_keys())
