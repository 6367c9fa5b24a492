"""Writes for per-user security records (API keys, sessions), webhooks and system config."""

import base64
import json
import logging
import random
import re
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta

from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import F, Max
from django.utils import timezone

from audit.models import SystemEvent
from audit.services import system_event_record
from celaest import crypto
from celaest.celery import app as celery_app
from celaest.errors import Conflict, InvalidInput
from celaest.usecounts import use_counted, uses_taken
from celaest.validation import json_problem
from identity.models import Organization, User

from . import webhook_sender, webhook_slots
from .events import ALL_EVENTS, WEBHOOK_SUBSCRIBABLE, deliveries_dispatch_on_commit, event_envelope
from .models import SystemConfig, UserApiKey, UserSession, Webhook, WebhookDelivery
from .webhook_targets import webhook_target_check

logger = logging.getLogger(__name__)

#: "leave this field as it is" for updates where None is a meaningful value
KEEP = object()

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


# --- sessions --------------------------------------------------------------------------------


_SESSION_TOUCH_SECONDS = 60
_REVOKED_MARKER_SECONDS = 14 * 24 * 3600  # longer than a session lives


def _revoked_marker(token_hash: str) -> str:
    return f"session-revoked:{token_hash}"


def _touch_marker(token_hash: str) -> str:
    return f"session-touched:{token_hash}"


def _device_info(user_agent: str) -> dict:
    """A rough label for the sessions list ("Firefox on Linux"); the full agent is kept too."""
    agent = user_agent.lower()
    browser = next(
        (name for marker, name in (("edg/", "Edge"), ("firefox/", "Firefox"), ("chrome/", "Chrome"),
                                   ("safari/", "Safari"), ("curl/", "curl"), ("python", "Python")) if marker in agent),
        "Other",
    )  # fmt: skip
    system = next(
        (name for marker, name in (("android", "Android"), ("iphone", "iOS"), ("ipad", "iOS"), ("windows", "Windows"),
                                   ("mac os", "macOS"), ("linux", "Linux")) if marker in agent),
        "Other",
    )  # fmt: skip
    return {"browser": browser, "os": system, "mobile": "mobile" in agent or system in ("Android", "iOS")}


def user_session_start(*, user: User, request) -> UserSession | None:
    """Record a login: one row per Django session, keyed by a hash of the session key."""
    session = getattr(request, "session", None)
    if session is None:
        return None
    if session.session_key is None:
        session.save()
    user_agent = request.META.get("HTTP_USER_AGENT", "")[:500]
    token_hash = crypto.hash_secret(session.session_key)
    row, _ = UserSession.objects.update_or_create(
        session_token=token_hash,
        defaults={
            "user": user,
            "ip_address": request.META.get("REMOTE_ADDR") or None,
            "user_agent": user_agent,
            "device_info": _device_info(user_agent),
            "is_active": True,
            "revoked_at": None,
            "last_activity_at": timezone.now(),
            "expires_at": session.get_expiry_date(),
        },
    )
    cache.set(_touch_marker(token_hash), 1, timeout=_SESSION_TOUCH_SECONDS)  # just written
    return row


def user_session_end(*, session_key: str) -> UserSession | None:
    """A logout: the row stays in the user's history, inactive."""
    row = UserSession.objects.filter(session_token=crypto.hash_secret(session_key)).first()
    return user_session_revoke(session=row) if row is not None else None


def user_session_touch(*, session_key: str) -> bool:
    """Whether the login behind ``session_key`` may go on. Records its activity at most once a
    minute. A session with no row (started before sessions were recorded) may go on."""
    token_hash = crypto.hash_secret(session_key)
    if cache.get(_revoked_marker(token_hash)):
        return False
    if not cache.add(_touch_marker(token_hash), 1, timeout=_SESSION_TOUCH_SECONDS):
        return True
    now = timezone.now()
    touched = UserSession.objects.filter(session_token=token_hash, is_active=True, expires_at__gt=now).update(
        last_activity_at=now
    )
    return bool(touched) or not UserSession.objects.filter(session_token=token_hash).exists()


def user_session_revoke(*, session: UserSession) -> UserSession:
    """End a login: the row is kept (for the user's security history), marked inactive, and the
    session's next request is logged out (``UserSessionMiddleware``)."""
    if session.is_active or session.revoked_at is None:
        session.is_active = False
        session.revoked_at = session.revoked_at or timezone.now()
        session.save(update_fields=["is_active", "revoked_at", "updated_at"])
    cache.set(_revoked_marker(session.session_token), 1, timeout=_REVOKED_MARKER_SECONDS)
    return session


def user_sessions_revoke_others(*, user: User, current_session_key: str | None) -> int:
    """Revoke every live session of ``user`` but the one making this request."""
    others = UserSession.objects.filter(user=user, is_active=True)
    if current_session_key:
        others = others.exclude(session_token=crypto.hash_secret(current_session_key))
    sessions = list(others)
    for session in sessions:
        user_session_revoke(session=session)
    return len(sessions)


#: Ended sessions stay listed (the user's security history) this long, then the cleanup deletes them.
SESSION_HISTORY_DAYS = 30


def user_sessions_clean_expired(*, history_days: int = SESSION_HISTORY_DAYS) -> int:
    """Mark expired sessions inactive, and delete those that ended more than ``history_days``
    ago. Returns the number deleted."""
    now = timezone.now()
    UserSession.objects.filter(is_active=True, expires_at__lte=now).update(is_active=False, updated_at=now)
    cutoff = now - timedelta(days=history_days)
    deleted, _ = UserSession.objects.filter(expires_at__lte=cutoff).delete()
    revoked, _ = UserSession.objects.filter(revoked_at__lte=cutoff).delete()
    return deleted + revoked


# --- webhooks --------------------------------------------------------------------------------

WEBHOOK_SECRET_PREFIX = "whsec_"  # noqa: S105 - a public prefix, not a secret
_WEBHOOK_SECRET_BYTES = 24
_WEBHOOK_SETTABLE_STATUSES = (Webhook.Status.ACTIVE, Webhook.Status.PAUSED)


@dataclass(frozen=True)
class CreatedWebhook:
    webhook: Webhook
    secret: str  # shown once; stored encrypted


def _new_webhook_secret() -> str:
    """A Standard Webhooks signing secret: ``whsec_`` + base64 of random bytes."""
    return WEBHOOK_SECRET_PREFIX + base64.b64encode(secrets.token_bytes(_WEBHOOK_SECRET_BYTES)).decode()


def _validate_webhook_url(url: str) -> str:
    webhook_target_check(url, require_resolution=False)  # the SSRF guard; again at every delivery
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


@transaction.atomic
def webhook_secret_rotate(*, webhook: Webhook, grace_hours: int = 24) -> CreatedWebhook:
    """A new signing secret (returned once). For ``grace_hours`` deliveries are signed with both
    the new and the old secret, so receivers can switch over without rejecting anything."""
    if not 0 <= grace_hours <= WEBHOOK_MAX_GRACE_HOURS:
        raise InvalidInput(
            f"grace_hours must be between 0 and {WEBHOOK_MAX_GRACE_HOURS}.",
            details={"grace_hours": [f"Use 0 to {WEBHOOK_MAX_GRACE_HOURS}."]},
        )
    webhook = Webhook.objects.select_for_update().get(pk=webhook.pk)
    secret = _new_webhook_secret()
    if grace_hours:
        webhook.previous_secret_encrypted = webhook.secret_encrypted
        webhook.previous_secret_expires_at = timezone.now() + timedelta(hours=grace_hours)
    else:
        webhook.previous_secret_encrypted = ""
        webhook.previous_secret_expires_at = None
    webhook.secret_encrypted = crypto.encrypt(secret)
    webhook.secret_hash = crypto.hash_secret(secret)
    webhook.save(
        update_fields=[
            "secret_encrypted",
            "secret_hash",
            "previous_secret_encrypted",
            "previous_secret_expires_at",
            "updated_at",
        ]
    )
    return CreatedWebhook(webhook=webhook, secret=secret)


# --- webhook delivery ------------------------------------------------------------------------

#: Wait before attempt 2, 3, ... 8 (attempt 1 is immediate): the Standard Webhooks schedule.
WEBHOOK_RETRY_DELAYS_SECONDS = (5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 10 * 3600)
WEBHOOK_MAX_ATTEMPTS = 1 + len(WEBHOOK_RETRY_DELAYS_SECONDS)
WEBHOOK_MAX_GRACE_HOURS = 7 * 24
WEBHOOK_JITTER = 0.1  # each wait is stretched or shrunk by up to 10%, so retries do not stampede
WEBHOOK_MAX_RETRY_AFTER_SECONDS = 24 * 3600
#: An endpoint failing without a single success for this long is disabled.
WEBHOOK_DISABLE_AFTER = timedelta(days=5)
#: How long an attempt in flight owns its row; a worker killed mid-attempt frees it after this.
WEBHOOK_ATTEMPT_LEASE = timedelta(seconds=120)
#: Waits up to this are handed to Celery as a countdown; longer ones are left to the sweeper
#: (a broker's visibility timeout makes long countdowns unreliable).
WEBHOOK_COUNTDOWN_MAX_SECONDS = 300
#: A delivery whose endpoint has every in-flight slot taken comes back after this wait, doubled
#: each time it finds them taken again, up to the maximum (see ``webhook_defer_delay``).
WEBHOOK_DEFER_FIRST_SECONDS = 2
WEBHOOK_DEFER_MAX_SECONDS = 30
_SWEEP_GRACE = timedelta(seconds=10)
_SWEEP_BATCH = 500
_RECOVER_LIMIT = 1000


def webhook_retry_delay(*, attempt_number: int, retry_after_seconds: int | None = None) -> float | None:
    """Seconds to wait after failed attempt ``attempt_number`` (None: no attempt left). A
    ``Retry-After`` longer than the schedule is honoured, up to a day."""
    if attempt_number >= WEBHOOK_MAX_ATTEMPTS:
        return None
    delay = WEBHOOK_RETRY_DELAYS_SECONDS[attempt_number - 1] * random.uniform(1 - WEBHOOK_JITTER, 1 + WEBHOOK_JITTER)
    if retry_after_seconds:
        delay = max(delay, min(retry_after_seconds, WEBHOOK_MAX_RETRY_AFTER_SECONDS))
    return delay


def _signing_secrets(webhook: Webhook) -> list[str]:
    secrets_ = [crypto.decrypt(webhook.secret_encrypted)]
    expires = webhook.previous_secret_expires_at
    if webhook.previous_secret_encrypted and expires is not None and expires > timezone.now():
        secrets_.append(crypto.decrypt(webhook.previous_secret_encrypted))
    return secrets_


def _delivery_body(delivery: WebhookDelivery) -> bytes:
    return json.dumps(delivery.payload, separators=(",", ":"), ensure_ascii=False).encode()


def webhook_delivery_attempt(*, delivery_id, deferrals: int = 0) -> WebhookDelivery | None:
    """Make one attempt of a pending delivery and record its outcome.

    The attempt first takes one of its endpoint's in-flight slots (``webhook_slots``); when the
    endpoint already has ``WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT`` attempts in flight, the delivery
    is deferred instead (``_delivery_defer``): nothing is sent, no attempt is counted, and the
    worker is free for other endpoints at once.

    The row is then claimed with a conditional UPDATE (pending and due), which moves its due time
    a lease ahead: two workers handed the same id never both send it, and if this worker dies
    before recording the outcome, the sweeper finds the row due again once the lease runs out
    (at-least-once: receivers deduplicate by ``webhook-id``), and its slot is free by then too.
    Returns None when there was nothing to do (already done, not due, claimed by another worker,
    or deferred).
    """
    due = WebhookDelivery.objects.filter(
        pk=delivery_id, status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=timezone.now()
    )
    webhook_id = due.values_list("webhook_id", flat=True).first()
    if webhook_id is None:
        return None
    slot = webhook_slots.endpoint_slot_take(webhook_id=webhook_id, hold_seconds=WEBHOOK_ATTEMPT_LEASE.total_seconds())
    if slot is None:
        _delivery_defer(delivery_id=delivery_id, deferrals=deferrals)
        return None
    try:
        return _delivery_attempt_in_slot(due=due, delivery_id=delivery_id)
    finally:
        slot.release()


def _delivery_attempt_in_slot(*, due, delivery_id) -> WebhookDelivery | None:
    if not due.update(next_attempt_at=timezone.now() + WEBHOOK_ATTEMPT_LEASE):
        return None
    delivery = WebhookDelivery.objects.select_related("webhook").get(pk=delivery_id)
    webhook = delivery.webhook
    if webhook.status != Webhook.Status.ACTIVE:
        return _delivery_record(
            delivery_id=delivery.pk,
            result=webhook_sender.SendResult(
                status_code=None, body="", error=f"Not sent: the endpoint is {webhook.status}.", duration_ms=0
            ),
            retry=False,
        )
    body = _delivery_body(delivery)
    headers = webhook_sender.signed_headers(
        secrets=_signing_secrets(webhook), message_id=delivery.event_id, timestamp=int(time.time()), body=body
    )
    result = webhook_sender.send(url=webhook.url, headers=headers, body=body)
    return _delivery_record(delivery_id=delivery.pk, result=result, retry=True)


def webhook_defer_delay(*, deferrals: int) -> float:
    """Seconds a delivery whose endpoint has every slot taken waits before it tries again: twice
    as long each time it found them taken, up to ``WEBHOOK_DEFER_MAX_SECONDS``, so a backlog of
    thousands of events for one endpoint costs a few messages a second, not a busy loop."""
    delay = min(WEBHOOK_DEFER_FIRST_SECONDS * 2**deferrals, WEBHOOK_DEFER_MAX_SECONDS)
    return delay * random.uniform(1 - WEBHOOK_JITTER, 1 + WEBHOOK_JITTER)


def _delivery_defer(*, delivery_id, deferrals: int) -> None:
    """Leave a pending delivery for later, as it is (the same attempt, not counted as failed).

    Its due time moves past the wait, so the sweeper does not send it meanwhile, and a message
    is sent for that time; if the broker refuses it, the row is still pending and the sweeper
    sends it once due. The UPDATE is conditional like a claim: a delivery another worker has just
    claimed (or finished) is left alone.
    """
    delay = webhook_defer_delay(deferrals=deferrals)
    moved = WebhookDelivery.objects.filter(
        pk=delivery_id, status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=timezone.now()
    ).update(next_attempt_at=timezone.now() + timedelta(seconds=delay))
    if not moved:
        return
    try:
        celery_app.send_task(
            "settings_app.deliver_webhook",
            args=[str(delivery_id)],
            kwargs={"deferrals": deferrals + 1},
            countdown=delay,
            retry=False,
        )
    except Exception:  # the broker is down: the sweeper will find the pending row once it is due
        logger.warning("Could not enqueue deferred webhook delivery %s; the sweeper will.", delivery_id, exc_info=True)


@transaction.atomic
def _delivery_record(*, delivery_id, result: webhook_sender.SendResult, retry: bool) -> WebhookDelivery:
    """Store an attempt's outcome on its row, keep the endpoint's health, schedule the next one."""
    now = timezone.now()
    delivery = WebhookDelivery.objects.select_for_update().get(pk=delivery_id)
    webhook = Webhook.objects.select_for_update().get(pk=delivery.webhook_id)
    delivery.response_status = result.status_code
    delivery.response_body = result.body
    delivery.error = result.error
    delivery.duration_ms = result.duration_ms
    delivery.next_attempt_at = None
    if result.succeeded:
        delivery.status = WebhookDelivery.Status.SUCCEEDED
        delivery.delivered_at = now
        delivery.save()
        webhook.last_success_at = now
        webhook.failing_since = None
        webhook.save(update_fields=["last_success_at", "failing_since", "updated_at"])
        return delivery
    delivery.status = WebhookDelivery.Status.FAILED
    delivery.save()
    if not retry:
        return delivery
    if webhook.failing_since is None:
        webhook.failing_since = now
        webhook.save(update_fields=["failing_since", "updated_at"])
    if result.status_code == 410:
        _webhook_disable(webhook=webhook, reason="The endpoint answered 410 Gone.")
    elif webhook.failing_since <= now - WEBHOOK_DISABLE_AFTER:
        _webhook_disable(
            webhook=webhook, reason=f"Failing without a success since {webhook.failing_since.isoformat()}."
        )
    else:
        delay = webhook_retry_delay(
            attempt_number=delivery.attempt_number, retry_after_seconds=result.retry_after_seconds
        )
        if delay is not None:
            _delivery_schedule(source=delivery, attempt_number=delivery.attempt_number + 1, delay_seconds=delay)
    return delivery


def _webhook_disable(*, webhook: Webhook, reason: str) -> None:
    if webhook.status == Webhook.Status.DISABLED:
        return
    webhook.status = Webhook.Status.DISABLED
    webhook.disabled_reason = reason[:255]
    webhook.save(update_fields=["status", "disabled_reason", "updated_at"])
    system_event_record(
        event_type="webhook.disabled",
        severity=SystemEvent.Severity.WARNING,
        message=f"Webhook {webhook.name} ({webhook.url}) disabled: {reason}",
        source="settings_app.webhooks",
        organization=webhook.organization,
        data={"webhook_id": str(webhook.pk), "reason": reason},
    )


def _delivery_schedule(*, source: WebhookDelivery, attempt_number: int, delay_seconds: float = 0) -> WebhookDelivery:
    """A new pending attempt of ``source``'s event, due after ``delay_seconds``."""
    delivery = WebhookDelivery.objects.create(
        webhook_id=source.webhook_id,
        organization_id=source.organization_id,
        event_id=source.event_id,
        event_type=source.event_type,
        payload=source.payload,
        attempt_number=attempt_number,
        next_attempt_at=timezone.now() + timedelta(seconds=delay_seconds),
    )
    if delay_seconds <= WEBHOOK_COUNTDOWN_MAX_SECONDS:
        deliveries_dispatch_on_commit([delivery.pk], countdown=delay_seconds or None)
    return delivery


def _lock_active_webhook(webhook: Webhook) -> Webhook:
    webhook = Webhook.objects.select_for_update().get(pk=webhook.pk)
    if webhook.status != Webhook.Status.ACTIVE:
        raise Conflict(
            f"The webhook is {webhook.status}; enable it first.",
            code="webhook_not_active",
            details={"status": [webhook.status]},
        )
    return webhook


@transaction.atomic
def webhook_delivery_replay(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a delivery's event again, now, as a new attempt (the same ``webhook-id``)."""
    webhook = _lock_active_webhook(delivery.webhook)
    attempts = WebhookDelivery.objects.filter(webhook=webhook, event_id=delivery.event_id)
    if attempts.filter(status=WebhookDelivery.Status.PENDING).exists():
        raise Conflict("An attempt of this event is already pending.", code="delivery_pending")
    last_number = attempts.aggregate(last=Max("attempt_number"))["last"] or 0
    return _delivery_schedule(source=delivery, attempt_number=last_number + 1)


@transaction.atomic
def webhook_send_test(*, webhook: Webhook) -> WebhookDelivery:
    """Deliver a ``webhook.test`` event to this endpoint only, whatever it subscribes to."""
    webhook = _lock_active_webhook(webhook)
    event_id, envelope = event_envelope(
        "webhook.test", {"webhook_id": str(webhook.pk), "message": "A test event from CELAEST."}
    )
    delivery = WebhookDelivery.objects.create(
        webhook=webhook,
        organization_id=webhook.organization_id,
        event_id=event_id,
        event_type="webhook.test",
        payload=envelope,
        next_attempt_at=timezone.now(),
    )
    deliveries_dispatch_on_commit([delivery.pk])
    return delivery


@transaction.atomic
def webhook_recover_failed(*, webhook: Webhook, since) -> int:
    """Send again every event whose attempts since ``since`` all failed (none succeeded, none
    pending), e.g. after the receiver's outage is over. Returns how many were queued."""
    webhook = _lock_active_webhook(webhook)
    settled = WebhookDelivery.objects.filter(
        webhook=webhook, status__in=[WebhookDelivery.Status.SUCCEEDED, WebhookDelivery.Status.PENDING]
    ).values("event_id")
    latest = (
        WebhookDelivery.objects.filter(webhook=webhook, status=WebhookDelivery.Status.FAILED, created_at__gte=since)
        .exclude(event_id__in=settled)
        .values("event_id")
        .annotate(last=Max("attempt_number"))
        .order_by("event_id")[:_RECOVER_LIMIT]
    )
    recovered = []
    for row in latest:
        source = WebhookDelivery.objects.get(webhook=webhook, event_id=row["event_id"], attempt_number=row["last"])
        recovered.append(
            WebhookDelivery(
                webhook=webhook,
                organization_id=webhook.organization_id,
                event_id=source.event_id,
                event_type=source.event_type,
                payload=source.payload,
                attempt_number=row["last"] + 1,
                next_attempt_at=timezone.now(),
            )
        )
    WebhookDelivery.objects.bulk_create(recovered)
    deliveries_dispatch_on_commit([delivery.pk for delivery in recovered])
    return len(recovered)


@transaction.atomic
def webhook_deliveries_sweep(*, batch_size: int = _SWEEP_BATCH) -> int:
    """Re-enqueue pending deliveries that are due and not being attempted: retries whose wait
    is over, attempts whose worker died (their lease ran out), and rows whose enqueue was lost
    (broker down). Sending twice is harmless: an attempt claims its row first."""
    due = WebhookDelivery.objects.filter(
        status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=timezone.now() - _SWEEP_GRACE
    ).order_by("next_attempt_at")
    if connection.vendor == "postgresql":  # several sweepers (or a slow one) never wait on each other
        due = due.select_for_update(skip_locked=True)
    ids = list(due.values_list("pk", flat=True)[:batch_size])
    deliveries_dispatch_on_commit(ids)
    return len(ids)


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


_CONFIG_KEY_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:-]*$")
CONFIG_KEY_RULE = "Use letters, digits, '_', '.', ':' and '-' (e.g. 'billing.grace_days')."


def config_key_is_valid(key: str) -> bool:
    """The one rule for system setting keys (API and ``config`` command alike)."""
    return bool(_CONFIG_KEY_RE.match(key))


@transaction.atomic
def system_config_set(
    *, key: str, value, actor: User | None = None, is_sensitive: bool | None = None, description: str | None = None
) -> tuple[SystemConfig, bool]:
    """Create or change setting ``key`` (the ``config set`` command). Returns (config, created)."""
    if not config_key_is_valid(key):
        raise InvalidInput(CONFIG_KEY_RULE, details={"key": [CONFIG_KEY_RULE]})
    if problem := json_problem(value):
        raise InvalidInput(problem, details={"value": [problem]})
    config = SystemConfig.objects.select_for_update().filter(key=key).first()
    if config is None:
        config = SystemConfig.objects.create(
            key=key, value=value, description=description or "", is_sensitive=bool(is_sensitive), updated_by=actor
        )
        return config, True
    return system_config_update(
        config=config, actor=actor, value=value, description=description, is_sensitive=is_sensitive
    ), False


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


def system_configs_reencrypt() -> int:
    """Open and seal again every sensitive setting (saving seals under the newest
    ``FIELD_ENCRYPTION_KEYS`` key); returns how many. A value no configured key opens stops it
    with nothing changed."""
    count = 0
    with transaction.atomic():
        for config in SystemConfig.objects.select_for_update().filter(is_sensitive=True):
            if getattr(config, "_unreadable_sealed_value", None) is not None:
                raise InvalidInput(f"{config.key} cannot be decrypted with FIELD_ENCRYPTION_KEYS; nothing was changed.")
            if config.value is not None:
                config.save(update_fields=["value"])  # updated_at stays: the value did not change
                count += 1
    return count
