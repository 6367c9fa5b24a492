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
