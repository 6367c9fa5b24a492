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

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.db import transaction

from celaest.errors import InvalidInput, NotFound
from identity.models import Organization
from licensing.models import License
from licensing.services import license_key_normalize

from .certificates import (
    ALGORITHM,
    CertificateInvalid,
    SigningKey,
    b64url_decode,
    b64url_encode,
    certificate_claims,
    claims_check,
    signed_document,
    signed_document_verify,
    signing_keys,
)
from .selectors import ipcontrol_config
from .services import LicenseCheck, license_activate, license_checkout

LICENSE_FILE_FORMAT = "celaest-license-file/1"
REQUEST_FORMAT = "celaest-activation-request/1"
RESPONSE_FORMAT = "celaest-activation-response/1"
ENCRYPTION = "A256GCM"
#: the request file's fields and their longest lengths (as the public endpoints take them)
_REQUEST_FIELDS = {"key": 100, "fingerprint": 255, "hostname": 255, "nonce": 128}


def license_file_key(license_key: str, fingerprint: str) -> bytes:
    """The AES-256 key of a license file: HKDF-SHA256 of the (normalized) license key, bound to
    the format and the machine."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=LICENSE_FILE_FORMAT.encode(), info=fingerprint.encode())
    return hkdf.derive(license_key_normalize(license_key).encode())


def _signed_text(document: dict) -> str:
    return f"{document['format']}.{document['kid']}.{document['nonce']}.{document['ciphertext']}"


def license_file_issue(*, license, fingerprint: str, now: datetime, ttl_hours: int) -> dict:
    """An encrypted, signed license file for ``license`` on the machine ``fingerprint``."""
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
    document["signature"] = b64url_encode(signing_key.private_key.sign(_signed_text(document).encode()))
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
    a certificate's; return them. Raises ``CertificateInvalid`` (as ``certificate_verify``, and
    BAD_KEY when the license key or the machine is not the file's)."""
    _, kid = signed_document_verify(document, document_format=LICENSE_FILE_FORMAT, keys=keys, signed_text=_signed_text)
    if isinstance(document, str):
        document = json.loads(document)
    try:
        nonce, ciphertext = b64url_decode(document["nonce"]), b64url_decode(document["ciphertext"])
        plaintext = AESGCM(license_file_key(license_key, fingerprint)).decrypt(
            nonce, ciphertext, f"{LICENSE_FILE_FORMAT}.{kid}".encode()
        )
    except (InvalidTag, ValueError) as exc:
        raise CertificateInvalid("BAD_KEY", "This license key and machine cannot open the file.") from exc
    try:
        claims = json.loads(plaintext)
    except ValueError as exc:
        raise CertificateInvalid("MALFORMED", "The file's claims cannot be read.") from exc
    return claims_check(claims, kid=kid, fingerprint=fingerprint, now=now)


def license_file_checkout(
    *, key: str, fingerprint: str, hostname: str = "", ip_address: str | None = None, snapshot=None
) -> tuple[LicenseCheck, dict | None]:
    """``license_checkout`` answering an encrypted license file instead of a certificate."""
    return license_checkout(
        key=key, fingerprint=fingerprint, hostname=hostname, ip_address=ip_address, snapshot=snapshot,
        issue=license_file_issue,
    )  # fmt: skip


# --- air-gapped activation -----------------------------------------------------------------------


def activation_request(*, license_key: str, fingerprint: str, hostname: str = "") -> dict:
    """The request file the software writes on the offline machine."""
    return {
        "format": REQUEST_FORMAT,
        "key": license_key,
        "fingerprint": fingerprint,
        "hostname": hostname,
        "nonce": secrets.token_urlsafe(16),
        "created_at": datetime.now(UTC).isoformat(),
    }


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
                license=check.license, fingerprint=request["fingerprint"], now=now, ttl_hours=ttl_hours
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
    """What the offline software checks of the response file it was given: signed by a known key,
    answering its own request (nonce) for its own machine. Returns the claims."""
    claims, _ = signed_document_verify(response, document_format=RESPONSE_FORMAT, keys=keys)
    if claims.get("request_nonce") != request.get("nonce"):
        raise CertificateInvalid("NONCE_MISMATCH", "The response answers another request.")
    if claims.get("fingerprint") != request.get("fingerprint"):
        raise CertificateInvalid("FINGERPRINT_MISMATCH", "The response was issued for another machine.")
    return claims
