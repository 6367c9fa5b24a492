"""The platform events every app emits: ``emit_event`` and the catalogue of event types a
webhook can subscribe to (``*`` subscribes to every event, including ones added later).

This is the one module other apps import to emit an event. The outbox behind it (the pending
delivery rows written in the caller's transaction, and their delivery) lives in
``settings_app.services.outbox``; nothing outside settings_app needs more of it than this.
"""

from .services.outbox import ALL_EVENTS, WEBHOOK_EVENT_TYPES, WEBHOOK_SUBSCRIBABLE, emit_event

__all__ = ["ALL_EVENTS", "WEBHOOK_EVENT_TYPES", "WEBHOOK_SUBSCRIBABLE", "emit_event"]
