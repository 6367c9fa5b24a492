"""Writes for per-user security records (API keys, sessions), webhooks and system config."""

import base64
import secrets
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from django.core.cache import cache
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from celaest import crypto
from celaest.errors import Conflict, InvalidInput
from identity.models import Organization, User

from .events import ALL_EVENTS, WEBHOOK_SUBSCRIBABLE
from .models import SystemConfig, UserApiKey, UserSession, Webhook

#: "leave this field as it is" for updates where None is a meaningful value
KEEP = object()

API_KEY_PREFIX = "cel_"
_KEY_BYTES = 32  # 256 bits of randomness
_DISPLAY_PREFIX_LENGTH = 12
_USAGE_FLUSH_SECONDS = 60


@dataclass(frozen=True)
class IssuedApiKey:
    api_key: UserApiKey
    raw_key: str  # shown once, never stored


def _validate_scopes(scopes: list[str]) -> list[str]:
    cleaned = []
    for scope in scopes:
        scope = scope.strip()
        if scope == "*":
            cleaned.append(scope)
            continue
        resource, _, access = scope.partition(":")
        if not resource or access not in ("read", "write"):
            raise InvalidInput(
                f"Invalid scope {scope!r}: use '*' or '<resource>:read' / '<resource>:write'.",
                details={"scopes": [scope]},
            )
        cleaned.append(f"{resource}:{access}")
    return sorted(set(cleaned))


@transaction.atomic
def api_key_create(
    *,
    user: User,
    name: str,
    scopes: list[str] | None = None,
    expires_in_days: int | None = None,
    rate_limit_rpm: int = 600,
) -> IssuedApiKey:
    """Issue a key for ``user``. The raw key is returned once; only its hash is stored."""
    if not name.strip():
        raise InvalidInput("An API key needs a name.", details={"name": ["This field is required."]})
    if expires_in_days is not None and expires_in_days < 1:
        raise InvalidInput("expires_in_days must be at least 1.", details={"expires_in_days": ["Must be >= 1."]})
    if rate_limit_rpm < 1:
        raise InvalidInput("rate_limit_rpm must be at least 1.", details={"rate_limit_rpm": ["Must be >= 1."]})
    raw_key = API_KEY_PREFIX + secrets.token_urlsafe(_KEY_BYTES)
    api_key = UserApiKey.objects.create(
        user=user,
        name=name.strip(),
        key_hash=crypto.hash_secret(raw_key),
        key_prefix=raw_key[:_DISPLAY_PREFIX_LENGTH],
        scopes=_validate_scopes(scopes if scopes is not None else ["*"]),
        rate_limit_rpm=rate_limit_rpm,
        expires_at=timezone.now() + timedelta(days=expires_in_days) if expires_in_days else None,
    )
    return IssuedApiKey(api_key=api_key, raw_key=raw_key)


def api_key_revoke(*, api_key: UserApiKey) -> UserApiKey:
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at", "updated_at"])
    return api_key


def _usage_counter_key(api_key_id) -> str:
    return f"apikey-usage:{api_key_id}"


def api_key_record_use(*, api_key: UserApiKey, ip_address: str | None) -> None:
    """Count a use without a database write per request: uses accumulate in the shared cache
    and are written at most once a minute per key (and by ``api_key_usage_flush``)."""
    counter = _usage_counter_key(api_key.pk)
    if not cache.add(counter, 1, timeout=None):
        cache.incr(counter)
    if cache.add(f"apikey-flushed:{api_key.pk}", 1, timeout=_USAGE_FLUSH_SECONDS):
        api_key_usage_flush(api_key_id=api_key.pk, ip_address=ip_address)


def api_key_usage_flush(*, api_key_id, ip_address: str | None = None) -> int:
    """Move the cached use count of one key into ``usage_count``. Returns the uses written."""
    counter = _usage_counter_key(api_key_id)
    pending = cache.get(counter) or 0
    if not pending:
        return 0
    cache.decr(counter, pending)  # atomic: uses counted meanwhile stay in the cache
    fields = {"usage_count": F("usage_count") + pending, "last_used_at": timezone.now()}
    if ip_address:
        fields["last_used_ip"] = ip_address
    UserApiKey.objects.filter(pk=api_key_id).update(**fields)
    return pending


def api_key_usage_flush_recent(*, within_hours: int = 2) -> int:
    """Write the cached use counts of every key used recently (the periodic flush)."""
    since = timezone.now() - timedelta(hours=within_hours)
    total = 0
    for api_key_id in UserApiKey.objects.filter(last_used_at__gte=since).values_list("pk", flat=True).iterator():
        total += api_key_usage_flush(api_key_id=api_key_id)
    return total


# --- sessions --------------------------------------------------------------------------------


def user_session_revoke(*, session: UserSession) -> UserSession:
    """End a login: the row is kept (for the user's security history), marked inactive."""
    if session.is_active or session.revoked_at is None:
        session.is_active = False
        session.revoked_at = session.revoked_at or timezone.now()
        session.save(update_fields=["is_active", "revoked_at", "updated_at"])
    return session


# --- webhooks --------------------------------------------------------------------------------

WEBHOOK_SECRET_PREFIX = "whsec_"  # noqa: S105 - a public prefix, not a secret
_WEBHOOK_SECRET_BYTES = 24
_WEBHOOK_URL_SCHEMES = ("http", "https")
_WEBHOOK_SETTABLE_STATUSES = (Webhook.Status.ACTIVE, Webhook.Status.PAUSED)


@dataclass(frozen=True)
class CreatedWebhook:
    webhook: Webhook
    secret: str  # shown once; stored encrypted


def _new_webhook_secret() -> str:
    """A Standard Webhooks signing secret: ``whsec_`` + base64 of random bytes."""
    return WEBHOOK_SECRET_PREFIX + base64.b64encode(secrets.token_bytes(_WEBHOOK_SECRET_BYTES)).decode()


def _validate_webhook_url(url: str) -> str:
    # Only the scheme for now; the address rules against SSRF are the delivery issue's.
    try:
        parts = urlsplit(url)
        valid = parts.scheme.lower() in _WEBHOOK_URL_SCHEMES and bool(parts.hostname)
    except ValueError:
        valid = False
    if not valid:
        raise InvalidInput("A webhook URL must be an http(s) URL.", details={"url": ["Use http:// or https://."]})
    return url


def _validate_webhook_events(events: list[str]) -> list[str]:
    if not events:
        raise InvalidInput("Subscribe to at least one event.", details={"events": ["This list may not be empty."]})
    unknown = sorted({event for event in events if event not in WEBHOOK_SUBSCRIBABLE})
    if unknown:
        raise InvalidInput(
            "Unknown webhook events.", details={"events": [f"Unknown event: {event}" for event in unknown]}
        )
    return [ALL_EVENTS] if ALL_EVENTS in events else sorted(set(events))


def _validate_webhook_status(status: str) -> str:
    if status not in _WEBHOOK_SETTABLE_STATUSES:
        raise InvalidInput(
            "A webhook can be set active or paused; the platform disables failing ones.",
            details={"status": [f"Choose one of {list(_WEBHOOK_SETTABLE_STATUSES)}."]},
        )
    return status


@transaction.atomic
def webhook_create(
    *,
    organization: Organization,
    user: User,
    name: str,
    url: str,
    events: list[str],
    status: str = Webhook.Status.ACTIVE,
) -> CreatedWebhook:
    """Register an endpoint with a new signing secret, returned once and stored encrypted."""
    secret = _new_webhook_secret()
    webhook = Webhook.objects.create(
        organization=organization,
        user=user,
        name=name,
        url=_validate_webhook_url(url),
        events=_validate_webhook_events(events),
        status=_validate_webhook_status(status),
        secret_encrypted=crypto.encrypt(secret),
        secret_hash=crypto.hash_secret(secret),
    )
    return CreatedWebhook(webhook=webhook, secret=secret)


@transaction.atomic
def webhook_update(
    *,
    webhook: Webhook,
    name: str | None = None,
    url: str | None = None,
    events: list[str] | None = None,
    status: str | None = None,
) -> Webhook:
    fields = []
    if name is not None:
        webhook.name = name
        fields.append("name")
    if url is not None:
        webhook.url = _validate_webhook_url(url)
        fields.append("url")
    if events is not None:
        webhook.events = _validate_webhook_events(events)
        fields.append("events")
    if status is not None and status != webhook.status:
        webhook.status = _validate_webhook_status(status)
        fields.append("status")
        if status == Webhook.Status.ACTIVE:  # re-enabled by hand: start counting failures afresh
            webhook.disabled_reason = ""
            webhook.failing_since = None
            fields += ["disabled_reason", "failing_since"]
    if fields:
        webhook.save(update_fields=[*fields, "updated_at"])
    return webhook


@transaction.atomic
def webhook_delete(*, webhook: Webhook) -> None:
    """Remove an endpoint together with its delivery log."""
    webhook.delete()


# --- system config ---------------------------------------------------------------------------


@transaction.atomic
def system_config_create(
    *, key: str, actor: User, value=None, description: str = "", is_sensitive: bool = False
) -> SystemConfig:
    if SystemConfig.objects.filter(key=key).exists():
        raise Conflict(f"A setting named {key!r} already exists.", code="config_exists", details={"key": [key]})
    return SystemConfig.objects.create(
        key=key, value=value, description=description, is_sensitive=is_sensitive, updated_by=actor
    )


@transaction.atomic
def system_config_update(
    *,
    config: SystemConfig,
    actor: User,
    value=KEEP,
    description: str | None = None,
    is_sensitive: bool | None = None,
) -> SystemConfig:
    """Change a setting. ``value=KEEP`` (the default) leaves the value as it is, so a client
    that never saw a sensitive value can still edit the description."""
    fields = ["updated_by"]
    config.updated_by = actor
    if value is not KEEP:
        config.value = value
        fields.append("value")
    if description is not None:
        config.description = description
        fields.append("description")
    if is_sensitive is not None:
        config.is_sensitive = is_sensitive
        fields.append("is_sensitive")
    config.save(update_fields=[*fields, "updated_at"])
    return config
