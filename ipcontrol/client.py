"""The CELAEST license client: what vendors ship inside their software.

Standalone on purpose — the standard library, plus ``cryptography`` for offline verification; no
Django, nothing else of this project: copy this one file into a product. The server verifies its
own documents with the same functions (``ipcontrol.certificates``, ``ipcontrol.offline``), so
there is one implementation of every check::

    client = LicenseClient("https://celaest.example.com", key="CEL-...", fingerprint="machine-1")
    client.activate()
    answer = client.validate(entitlements=["export"])    # {"valid", "code", "license", ...}
    client.start_heartbeats()                              # a daemon thread, at half the lease window
    keys = public_keys_from_document(client.public_keys())  # keep them for the offline days
    claims = verify_certificate(client.checkout()["certificate"], fingerprint="machine-1", keys=keys)
    claims = open_license_file(client.license_file()["license_file"], license_key=..., fingerprint=..., keys=keys)

Offline machines: ``activation_request(...)`` is the file to carry out; the response file a person
brings back is checked with ``verify_activation_response(response, request=..., keys=keys)``.
"""

import base64
import hashlib
import json
import secrets
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

ALGORITHM = "Ed25519"
CERTIFICATE_FORMAT = "celaest-license-certificate/1"
LICENSE_FILE_FORMAT = "celaest-license-file/1"
REQUEST_FORMAT = "celaest-activation-request/1"
RESPONSE_FORMAT = "celaest-activation-response/1"
#: the clock skew tolerated on a document's issue time
CLOCK_SKEW = timedelta(minutes=5)


class VerificationError(Exception):
    """A document failed verification; ``code`` says why (MALFORMED, UNKNOWN_KEY, BAD_SIGNATURE,
    BAD_KEY, FINGERPRINT_MISMATCH, NONCE_MISMATCH, NOT_YET_VALID, EXPIRED)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class PublicKey(NamedTuple):
    kid: str
    public_key: Ed25519PublicKey


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def public_keys_from_document(document: dict) -> tuple[PublicKey, ...]:
    """The keys of ``GET /api/v1/licenses/public-key``'s answer."""
    try:
        return tuple(
            PublicKey(entry["kid"], Ed25519PublicKey.from_public_bytes(b64url_decode(entry["public_key"])))
            for entry in document["keys"]
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise VerificationError("MALFORMED", "The public key document is not valid.") from exc


def verify_signed(
    document: dict | str,
    *,
    document_format: str,
    keys,
    signed_text: Callable[[dict], str] | None = None,
) -> tuple[dict | str, str]:
    """Check the signature of a document of ``document_format`` with one of ``keys`` (anything
    with ``kid`` and ``public_key``); return its payload (decoded JSON claims, or the text
    ``signed_text`` picks when given) and its key id."""
    try:
        if isinstance(document, str):
            document = json.loads(document)
        if document.get("format") != document_format or document.get("alg") != ALGORITHM:
            raise VerificationError("MALFORMED", f"Not a {document_format} document.")
        signature, kid = b64url_decode(document["signature"]), document["kid"]
        text = signed_text(document) if signed_text else document["payload"]
        if not isinstance(text, str) or not isinstance(kid, str):
            raise TypeError("not text")
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise VerificationError("MALFORMED", "The document cannot be read.") from exc
    key = next((key for key in keys if key.kid == kid), None)
    if key is None:
        raise VerificationError("UNKNOWN_KEY", f"No known public key has id {kid!r}.")
    try:
        key.public_key.verify(signature, text.encode())
    except (InvalidSignature, ValueError, AttributeError) as exc:
        raise VerificationError("BAD_SIGNATURE", "The signature does not match the document.") from exc
    if signed_text:
        return text, kid
    try:
        claims = json.loads(b64url_decode(text))
    except (ValueError, TypeError) as exc:
        raise VerificationError("MALFORMED", "The document's claims cannot be read.") from exc
    if not isinstance(claims, dict):
        raise VerificationError("MALFORMED", "The document's claims cannot be read.")
    return claims, kid


def check_claims(claims: dict, *, kid: str, fingerprint: str, now: datetime | None = None) -> dict:
    """A certificate's (or license file's) claims hold for the machine ``fingerprint`` at ``now``."""
    now = now or datetime.now(UTC)
    try:
        issued_at = datetime.fromisoformat(claims["issued_at"].replace("Z", "+00:00"))
        expires_at = datetime.fromisoformat(claims["expires_at"].replace("Z", "+00:00"))
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise VerificationError("MALFORMED", "The certificate's claims cannot be read.") from exc
    if claims.get("kid") != kid:
        raise VerificationError("BAD_SIGNATURE", "The key id inside the certificate does not match.")
    if claims.get("fingerprint") != fingerprint:
        raise VerificationError("FINGERPRINT_MISMATCH", "The certificate was issued for another machine.")
    if now < issued_at - CLOCK_SKEW:
        raise VerificationError("NOT_YET_VALID", "The certificate is not valid yet.")
    if now >= expires_at:
        raise VerificationError("EXPIRED", "The certificate has expired.")
    return claims


def verify_certificate(certificate: dict | str, *, fingerprint: str, keys, now: datetime | None = None) -> dict:
    """Check an offline certificate's signature, machine and time window; return its claims."""
    claims, kid = verify_signed(certificate, document_format=CERTIFICATE_FORMAT, keys=keys)
    return check_claims(claims, kid=kid, fingerprint=fingerprint, now=now)


def normalize_key(raw: str) -> str:
    """A license key as a person may type it (any case, spaces, O for 0, I or L for 1)."""
    cleaned = raw.strip().upper().replace(" ", "")
    return cleaned.translate(str.maketrans({"O": "0", "I": "1", "L": "1"})).replace("CE1-", "CEL-", 1)


def license_file_key(license_key: str, fingerprint: str) -> bytes:
    """The AES-256 key of a license file: HKDF-SHA256 of the normalized license key, bound to the
    format and the machine."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=LICENSE_FILE_FORMAT.encode(), info=fingerprint.encode())
    return hkdf.derive(normalize_key(license_key).encode())


def license_file_signed_text(document: dict) -> str:
    """What a license file's signature covers."""
    return f"{document['format']}.{document['kid']}.{document['nonce']}.{document['ciphertext']}"


def open_license_file(
    document: dict | str, *, license_key: str, fingerprint: str, keys, now: datetime | None = None
) -> dict:
    """Check an encrypted license file's signature, decrypt it with the license key and check its
    claims as a certificate's; return them."""
    signed = license_file_signed_text
    _, kid = verify_signed(document, document_format=LICENSE_FILE_FORMAT, keys=keys, signed_text=signed)
    if isinstance(document, str):
        document = json.loads(document)
    try:
        nonce, ciphertext = b64url_decode(document["nonce"]), b64url_decode(document["ciphertext"])
        plaintext = AESGCM(license_file_key(license_key, fingerprint)).decrypt(
            nonce, ciphertext, f"{LICENSE_FILE_FORMAT}.{kid}".encode()
        )
        claims = json.loads(plaintext)
    except (InvalidTag, ValueError) as exc:
        raise VerificationError("BAD_KEY", "This license key and machine cannot open the file.") from exc
    return check_claims(claims, kid=kid, fingerprint=fingerprint, now=now)


def activation_request(*, license_key: str, fingerprint: str, hostname: str = "") -> dict:
    """The request file an offline machine writes, for a person to upload."""
    return {
        "format": REQUEST_FORMAT,
        "key": license_key,
        "fingerprint": fingerprint,
        "hostname": hostname,
        "nonce": secrets.token_urlsafe(16),
        "created_at": datetime.now(UTC).isoformat(),
    }


def verify_activation_response(response: dict | str, *, request: dict, keys) -> dict:
    """The response file brought back: signed by a known key, answering this request (nonce) for
    this machine. Returns its claims (``valid``, ``code``, ``license_file``...)."""
    claims, _ = verify_signed(response, document_format=RESPONSE_FORMAT, keys=keys)
    if claims.get("request_nonce") != request.get("nonce"):
        raise VerificationError("NONCE_MISMATCH", "The response answers another request.")
    if claims.get("fingerprint") != request.get("fingerprint"):
        raise VerificationError("FINGERPRINT_MISMATCH", "The response was issued for another machine.")
    return claims


def machine_fingerprint(*parts: str) -> str:
    """A stable fingerprint from what identifies the machine (e.g. its machine id and MAC)."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


class LicenseClient:
    """The public license endpoints, by license key. Each call returns the server's JSON answer;
    ``LicenseServerError`` for anything but a 200."""

    def __init__(self, base_url: str, *, key: str, fingerprint: str, hostname: str = "", timeout: float = 10):
        self.base_url = base_url.rstrip("/")
        self.key, self.fingerprint, self.hostname, self.timeout = key, fingerprint, hostname, timeout
        self.last_heartbeat: dict | None = None
        self._stop = threading.Event()
        self._beating: threading.Thread | None = None

    def _call(self, route: str, **extra) -> dict:
        body = {"key": self.key, "fingerprint": self.fingerprint, "hostname": self.hostname, **extra}
        return self._request("POST", f"/api/v1/licenses/{route}", body)

    def _request(self, method: str, path: str, body: dict | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310 - the vendor's own server URL
            self.base_url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise LicenseServerError(exc.code, exc.read().decode(errors="replace")) from exc

    def validate(self, *, entitlements: list[str] | tuple[str, ...] = ()) -> dict:
        return self._call("validate", **({"entitlements": list(entitlements)} if entitlements else {}))

    def activate(self) -> dict:
        return self._call("activate")

    def deactivate(self) -> dict:
        return self._call("deactivate")

    def heartbeat(self) -> dict:
        self.last_heartbeat = self._call("heartbeat")
        return self.last_heartbeat

    def checkout(self) -> dict:
        return self._call("checkout")

    def license_file(self) -> dict:
        return self._call("license-file")

    def public_keys(self) -> dict:
        return self._request("GET", "/api/v1/licenses/public-key")

    def start_heartbeats(self, interval: float | None = None) -> threading.Thread:
        """Beat in a daemon thread: every ``interval`` seconds, else at half the lease window the
        first beat answers (60 s without one). ``stop_heartbeats`` ends it."""
        first = self.heartbeat()
        window = ((first.get("license") or {}).get("heartbeat_window_seconds")) or 120
        every = interval if interval is not None else window / 2
        self._stop.clear()

        def beat():
            while not self._stop.wait(every):
                try:
                    self.heartbeat()
                except (OSError, LicenseServerError):
                    continue  # the lease has a grace: the next beat may get through

        self._beating = threading.Thread(target=beat, name="celaest-license-heartbeat", daemon=True)
        self._beating.start()
        return self._beating

    def stop_heartbeats(self) -> None:
        self._stop.set()
        if self._beating is not None:
            self._beating.join(timeout=self.timeout)
            self._beating = None


class LicenseServerError(Exception):
    def __init__(self, status: int, body: str):
        super().__init__(f"HTTP {status}: {body[:200]}")
        self.status = status
        self.body = body
