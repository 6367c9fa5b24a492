"""Signing and sending one webhook request (the Standard Webhooks protocol).

Headers: ``webhook-id`` (the event id, the same on every attempt so receivers can deduplicate),
``webhook-timestamp`` (seconds since the epoch) and ``webhook-signature``: ``v1,<base64
HMAC-SHA256 of "id.timestamp.body">`` keyed with the base64-decoded ``whsec_`` secret; during a
secret rotation one signature per secret, separated by spaces.

The request goes to the address the SSRF guard checked (``webhook_target_check``) with the
original host in ``Host`` and in TLS (SNI and certificate verification), never follows a
redirect, and reads at most a little of the answer.
"""

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit, urlunsplit

import httpx
from django.conf import settings

from .webhook_targets import WebhookTargetRefused, webhook_target_check

SECRET_PREFIX = "whsec_"  # noqa: S105 - the public prefix of Standard Webhooks secrets
USER_AGENT = "CELAEST-Webhooks/1.0"
RESPONSE_BODY_LIMIT = 2000  # characters of the answer kept on the delivery row
_READ_LIMIT = 64 * 1024


@dataclass(frozen=True)
class SendResult:
    status_code: int | None
    body: str
    error: str
    duration_ms: int
    retry_after_seconds: int | None = None

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def sign(*, secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """One ``v1,<signature>`` entry, as the Standard Webhooks libraries compute and verify it."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    digest = hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(*, secrets: list[str], message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(
            sign(secret=secret, message_id=message_id, timestamp=timestamp, body=body) for secret in secrets
        ),
    }


def _retry_after_seconds(value: str | None) -> int | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return int(value)
    try:
        return max(0, int(parsedate_to_datetime(value).timestamp() - time.time()))
    except (TypeError, ValueError, OverflowError):
        return None


def _pinned_url(url: str, address) -> str:
    parts = urlsplit(url)
    host = f"[{address}]" if address.version == 6 else str(address)
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))


def send(*, url: str, headers: dict[str, str], body: bytes) -> SendResult:
    """POST ``body`` to ``url`` once. Never raises for the endpoint's failures: they are results."""
    started = time.monotonic()

    def elapsed() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        target = webhook_target_check(url, require_resolution=True)
    except WebhookTargetRefused as exc:
        return SendResult(status_code=None, body="", error=f"Refused: {exc.message}", duration_ms=elapsed())
    # The host as the guard judged it (IDNA, no trailing dot): what the endpoint's virtual host and
    # certificate know, and all a header can carry.
    host = f"[{target.host}]" if ":" in target.host else target.host
    port = urlsplit(url).port
    request_headers = {**headers, "host": f"{host}:{port}" if port else host}
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    timeout = httpx.Timeout(settings.WEBHOOK_TIMEOUT_SECONDS, connect=min(5.0, settings.WEBHOOK_TIMEOUT_SECONDS))
    # httpx's timeouts bound each wait, not the whole answer: an endpoint sending a byte every few
    # seconds would hold the attempt (and its thread: the webhooks pool has no time limit) for as
    # long as it liked. The answer is cut off once the attempt has taken WEBHOOK_TIMEOUT_SECONDS.
    deadline = started + settings.WEBHOOK_TIMEOUT_SECONDS
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client:
            with client.stream(
                "POST", _pinned_url(url, target.address), content=body, headers=request_headers, extensions=extensions
            ) as response:
                received = b""
                for chunk in response.iter_bytes():
                    received += chunk
                    if len(received) >= _READ_LIMIT:
                        break
                    if time.monotonic() > deadline:
                        raise httpx.ReadTimeout("The answer took longer than WEBHOOK_TIMEOUT_SECONDS.")
    except httpx.TimeoutException:
        return SendResult(status_code=None, body="", error="Timed out.", duration_ms=elapsed())
    except httpx.HTTPError as exc:
        return SendResult(status_code=None, body="", error=f"{type(exc).__name__}: {exc}"[:500], duration_ms=elapsed())
    text = received.decode("utf-8", errors="replace").replace("\x00", "")[:RESPONSE_BODY_LIMIT]
    error = ""
    if response.is_redirect:
        error = f"Redirect to {response.headers.get('location', '?')[:300]} not followed."
    elif not 200 <= response.status_code < 300:
        error = f"HTTP {response.status_code}."
    return SendResult(
        status_code=response.status_code,
        body=text,
        error=error,
        duration_ms=elapsed(),
        retry_after_seconds=_retry_after_seconds(response.headers.get("retry-after")),
    )
