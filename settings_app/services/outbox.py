"""The platform's event outbox: the catalogue of events a webhook can subscribe to, the event
written as pending delivery rows in the transaction of the change (``emit_event``), and their
delivery to the endpoints: attempts (one endpoint's in-flight slots, a lease on the row),
retries on the Standard Webhooks schedule, deferral, the sweeper that finds lost or stuck rows,
replays and recovery.

``*`` subscribes to every event, including ones added later. Other apps write events through
``settings_app.events``, the public face of this module.
"""

import json
import logging
import random
import time
import uuid
from datetime import timedelta

from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from audit.models import SystemEvent
from audit.services import system_event_record
from celaest import crypto
from celaest.celery import app as celery_app
from celaest.errors import Conflict
from celaest.readcache import ReadCache
from celaest.redaction import redact
from settings_app import webhook_sender, webhook_slots
from settings_app.models import Webhook, WebhookDelivery

logger = logging.getLogger(__name__)


ALL_EVENTS = "*"
WEBHOOK_EVENT_TYPES: tuple[str, ...] = (
    "license.created",
    "license.suspended",
    "license.reinstated",
    "license.renewed",
    "license.revoked",
    "license.expired",
    "license.trial_converted",
    "license.collision_detected",
    "license.overage",
    "machine.activated",
    "machine.deactivated",
    "machine.heartbeat_lost",
    "order.created",
    "order.paid",
    "order.refunded",
    "order.cancelled",
    "invoice.issued",
    "invoice.voided",
    "invoice.credited",
    "invoice.paid",
    "invoice.payment_failed",
    "subscription.created",
    "subscription.renewed",
    "subscription.updated",
    "subscription.past_due",
    "subscription.paused",
    "subscription.resumed",
    "subscription.cancelled",
    "usage.threshold_reached",
    "task.completed",
    "task.failed",
    "batch.completed",
    "batch.failed",
    "batch.cancelled",
    "collision.detected",
    "collision.resolved",
    "webhook.test",
)

#: What ``Webhook.events`` may contain.
WEBHOOK_SUBSCRIBABLE = (ALL_EVENTS, *WEBHOOK_EVENT_TYPES)


def event_envelope(event_type: str, payload: dict) -> tuple[str, dict]:
    """A new event id and the Standard Webhooks body ``{"type", "timestamp", "data"}``."""
    event_id = f"msg_{uuid.uuid4().hex}"
    return event_id, {"type": event_type, "timestamp": timezone.now().isoformat(), "data": redact(payload)}


def deliveries_dispatch_on_commit(delivery_ids: list, *, countdown: float | None = None) -> None:
    """Hand deliveries to the Celery workers once the transaction that stored them commits.

    A rollback discards the callback with the rows. If the broker is unreachable the rows stay
    pending and the beat sweeper (``settings_app.sweep_webhook_deliveries``) sends them later.
    """
    if not delivery_ids:
        return
    ids = [str(delivery_id) for delivery_id in delivery_ids]

    def enqueue():
        for delivery_id in ids:
            try:
                _deliver_webhook_enqueue(delivery_id, countdown=countdown)
            except Exception:  # the broker is down: the sweeper will find the pending row
                logger.warning("Could not enqueue webhook delivery %s; the sweeper will.", delivery_id, exc_info=True)

    transaction.on_commit(enqueue)


def _deliver_webhook_enqueue(delivery_id: str, *, countdown: float | None) -> None:
    """Queue one attempt. The task is named, not imported: ``settings_app.tasks`` imports these
    services, and ``SettingsAppConfig.ready()`` imports the tasks, so the name resolves to the
    task in every process (its queue, and run in-process when tasks are eager)."""
    celery_app.signature("settings_app.deliver_webhook", args=[delivery_id]).apply_async(
        countdown=countdown, retry=False
    )


#: each organization's active webhooks: read by every event (and AI work emits one per task)
_active_webhooks = ReadCache("active-webhooks").watch(Webhook)


def emit_event(event_type: str, *, organization, payload: dict) -> str:
    """Record a platform event for delivery to the organization's subscribed webhooks.

    Call it inside the transaction that makes the change: the pending deliveries are rows of
    that same transaction (an outbox), so a rollback leaves no event behind and a crash after
    commit loses none — the delivery worker and its sweeper pick them up. Returns the event id
    (the Standard Webhooks ``webhook-id`` every attempt of it carries). ``organization`` is an
    ``Organization`` or its id (hot paths pass the id they hold, saving a query).
    """
    if event_type not in WEBHOOK_EVENT_TYPES:
        raise ValueError(f"Unknown event type {event_type!r}; add it to WEBHOOK_EVENT_TYPES first.")
    event_id, envelope = event_envelope(event_type, payload)
    if organization is None:
        return event_id
    # An organization has a handful of endpoints: match subscriptions here, portable to SQLite.
    organization_id = getattr(organization, "pk", organization)
    active = _active_webhooks.get(
        organization_id,
        lambda: list(Webhook.objects.filter(organization_id=organization_id, status=Webhook.Status.ACTIVE)),
    )
    subscribed = [hook for hook in active if event_type in hook.events or ALL_EVENTS in hook.events]
    deliveries = [
        WebhookDelivery(
            webhook=webhook,
            organization_id=webhook.organization_id,
            event_id=event_id,
            event_type=event_type,
            payload=envelope,
            attempt_number=1,
            next_attempt_at=timezone.now(),
        )
        for webhook in subscribed
    ]
    WebhookDelivery.objects.bulk_create(deliveries)
    deliveries_dispatch_on_commit([delivery.pk for delivery in deliveries])
    return event_id


#: Wait before attempt 2, 3, ... 8 (attempt 1 is immediate): the Standard Webhooks schedule.
WEBHOOK_RETRY_DELAYS_SECONDS = (5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 10 * 3600)
WEBHOOK_MAX_ATTEMPTS = 1 + len(WEBHOOK_RETRY_DELAYS_SECONDS)
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
