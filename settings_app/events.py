"""The catalogue of platform events a webhook can subscribe to (``Webhook.events``).

``*`` subscribes to every event, including ones added later.
"""

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
)

#: What ``Webhook.events`` may contain.
WEBHOOK_SUBSCRIBABLE = (ALL_EVENTS, *WEBHOOK_EVENT_TYPES)


def emit_event(event_type: str, *, organization, payload: dict) -> str:
    """Record a platform event for delivery to the organization's subscribed webhooks.

    Call it inside the transaction that makes the change: the pending deliveries are rows of
    that same transaction (an outbox), so a rollback leaves no event behind and a crash after
    commit loses none — the delivery worker and its sweeper pick them up. Returns the event id
    (the Standard Webhooks ``webhook-id`` every attempt of it carries).
    """
    import uuid

    from django.utils import timezone

    from celaest.redaction import redact

    from .models import Webhook, WebhookDelivery

    if event_type not in WEBHOOK_EVENT_TYPES:
        raise ValueError(f"Unknown event type {event_type!r}; add it to WEBHOOK_EVENT_TYPES first.")
    event_id = f"msg_{uuid.uuid4().hex}"
    if organization is None:
        return event_id
    now = timezone.now()
    envelope = {"type": event_type, "timestamp": now.isoformat(), "data": redact(payload)}
    # An organization has a handful of endpoints: match subscriptions here, portable to SQLite.
    active = Webhook.objects.filter(organization=organization, status=Webhook.Status.ACTIVE)
    subscribed = [hook for hook in active if event_type in hook.events or ALL_EVENTS in hook.events]
    deliveries = [
        WebhookDelivery(
            webhook=webhook,
            organization_id=webhook.organization_id,
            event_id=event_id,
            event_type=event_type,
            payload=envelope,
            attempt_number=1,
            next_attempt_at=now,
        )
        for webhook in subscribed
    ]
    WebhookDelivery.objects.bulk_create(deliveries)
    return event_id
