"""User API keys: issued once (only a hash is stored), revoked, and their use counted in the
shared cache and written at most once a minute per key."""

import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from celaest import crypto
from celaest.errors import InvalidInput
from celaest.usecounts import use_counted, uses_taken
from identity.models import User
from settings_app.models import UserApiKey

API_KEY_PREFIX = "cel_"
_KEY_BYTES = 32  # 256 bits of randomness
_DISPLAY_PREFIX_LENGTH = 12


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


def api_key_material() -> tuple[str, dict[str, str]]:
    """A new raw key, and what is stored of it: its hash and its display prefix."""
    raw_key = API_KEY_PREFIX + secrets.token_urlsafe(_KEY_BYTES)
    return raw_key, {"key_hash": crypto.hash_secret(raw_key), "key_prefix": raw_key[:_DISPLAY_PREFIX_LENGTH]}


@transaction.atomic
def api_key_create(
    *,
    user: User,
    name: str,
    scopes: list[str] | None = None,
    expires_in_days: int | None = None,
    rate_limit_rpm: int = 600,
    **limits,
) -> IssuedApiKey:
    """Issue a key for ``user``. The raw key is returned once; only its hash is stored. ``limits``:
    its AI gateway limits (``API_KEY_LIMITS``)."""
    if not name.strip():
        raise InvalidInput("An API key needs a name.", details={"name": ["This field is required."]})
    if expires_in_days is not None and expires_in_days < 1:
        raise InvalidInput("expires_in_days must be at least 1.", details={"expires_in_days": ["Must be >= 1."]})
    if rate_limit_rpm < 1:
        raise InvalidInput("rate_limit_rpm must be at least 1.", details={"rate_limit_rpm": ["Must be >= 1."]})
    raw_key, stored = api_key_material()
    api_key = UserApiKey.objects.create(
        user=user,
        name=name.strip(),
        **stored,
        scopes=_validate_scopes(scopes if scopes is not None else ["*"]),
        rate_limit_rpm=rate_limit_rpm,
        expires_at=timezone.now() + timedelta(days=expires_in_days) if expires_in_days else None,
        **_checked_limits(limits),
    )
    return IssuedApiKey(api_key=api_key, raw_key=raw_key)


#: what a key may be limited to on the AI gateway (operations.budgets enforces them)
API_KEY_LIMITS = (
    "allowed_models",
    "spend_limit_daily_usd",
    "spend_limit_monthly_usd",
    "tokens_per_minute",
    "max_requests_in_flight",
)


def _checked_limits(limits: dict) -> dict:
    """``limits`` checked by the model fields' own validators (the admin runs the same)."""
    unknown = set(limits) - set(API_KEY_LIMITS)
    if unknown:
        raise TypeError(f"Unknown API key limits: {sorted(unknown)}")
    errors = {}
    for name, value in limits.items():
        if value is None:
            continue
        try:
            UserApiKey._meta.get_field(name).run_validators(value)
        except ValidationError as error:
            errors[name] = error.messages
    if errors:
        raise InvalidInput("An API key limit is invalid.", details=errors)
    return limits


@transaction.atomic
def api_key_update(*, api_key: UserApiKey, name: str | None = None, **limits) -> UserApiKey:
    """Rename ``api_key`` and change its AI gateway limits (a limit given as None: none)."""
    changed = list(_checked_limits(limits))
    for field, value in limits.items():
        setattr(api_key, field, value)
    if name is not None:
        if not name.strip():
            raise InvalidInput("An API key needs a name.", details={"name": ["This field is required."]})
        api_key.name = name.strip()
        changed.append("name")
    if changed:
        api_key.save(update_fields=[*changed, "updated_at"])
    return api_key


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
    if use_counted(_usage_counter_key(api_key.pk)):
        api_key_usage_flush(api_key_id=api_key.pk, ip_address=ip_address)


def api_key_usage_flush(*, api_key_id, ip_address: str | None = None) -> int:
    """Move the cached use count of one key into ``usage_count``. Returns the uses written."""
    pending = uses_taken(_usage_counter_key(api_key_id))
    if not pending:
        return 0
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
