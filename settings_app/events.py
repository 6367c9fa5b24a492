"""The catalogue of platform events a webhook can subscribe to (``Webhook.events``).

``*`` subscribes to every event, including ones added later. ``emit_event`` is the outbox every
module writes events through.
"""

import logging
import uuid

from django.db import transaction
from django.utils import timezone

from celaest.readcache import ReadCache
from celaest.redaction import redact

from .models import Webhook, WebhookDelivery

logger = logging.getLogger(__name__)

ALL_EVENTS = "*"

WEBHOOK_EVENT_TYPES: tuple[str, ...] = (
    "license.created",
    "license.suspended",
    "license.reinstated",
    "license.renewed",
    "license.revoked",
    "license.expired",
    "license.collision_detected",
    "order.created",
    "order.paid",
    "order.refunded",
    "order.cancelled",
    "invoice.issued",
    "invoice.voided",
    "invoice.credited",
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
        from .tasks import deliver_webhook

        for delivery_id in ids:
            try:
                deliver_webhook.apply_async(args=[delivery_id], countdown=countdown, retry=False)
            except Exception:  # the broker is down: the sweeper will find the pending row
                logger.warning("Could not enqueue webhook delivery %s; the sweeper will.", delivery_id, exc_info=True)

    transaction.on_commit(enqueue)


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
