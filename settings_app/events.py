"""The platform events every app emits: ``emit_event`` and the catalogue of event types a
webhook can subscribe to (``*`` subscribes to every event, including ones added later).

This is the one module other apps import to emit an event. The outbox behind it (the pending
delivery rows written in the caller's transaction, and their delivery) lives in
``settings_app.services.outbox``; nothing outside settings_app needs more of it than this.
"""

from collections.abc import Iterable

from .models import Webhook
from .services.outbox import ALL_EVENTS, WEBHOOK_EVENT_TYPES, WEBHOOK_SUBSCRIBABLE, emit_event

__all__ = ["ALL_EVENTS", "WEBHOOK_EVENT_TYPES", "WEBHOOK_SUBSCRIBABLE", "emit_event", "emit_events"]


def emit_events(event_type: str, *, events: Iterable[tuple]) -> None:
    """``emit_event`` for many events of one type at once (a batch job): ``events`` holds
    ``(organization id, payload)`` pairs. One query finds which of the organizations have an
    active webhook at all; only their events go through ``emit_event`` (most organizations have
    none, and an event nobody subscribed to writes nothing)."""
    if event_type not in WEBHOOK_EVENT_TYPES:
        raise ValueError(f"Unknown event type {event_type!r}; add it to WEBHOOK_EVENT_TYPES first.")
    events = list(events)
    listening = set(
        Webhook.objects.filter(
            organization_id__in={organization_id for organization_id, _ in events}, status=Webhook.Status.ACTIVE
        ).values_list("organization_id", flat=True)
    )
    for organization_id, payload in events:
        if organization_id in listening:
            emit_event(event_type, organization=organization_id, payload=payload)
