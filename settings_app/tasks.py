"""Celery tasks of settings_app: thin wrappers around services, taking ids."""

from celery import shared_task
from django.db import DatabaseError

from .services import api_keys, outbox, sessions


@shared_task(name="settings_app.flush_api_key_usage", ignore_result=True, time_limit=120, soft_time_limit=100)
def flush_api_key_usage() -> int:
    """Move API key use counts from the shared cache into the database."""
    return api_keys.api_key_usage_flush_recent()


@shared_task(
    name="settings_app.deliver_webhook",
    ignore_result=True,
    acks_late=True,
    # An attempt is bounded by WEBHOOK_TIMEOUT_SECONDS (webhook_sender.send). The limits only
    # catch a hung prefork worker: the webhooks worker runs a thread pool, which has none.
    time_limit=90,
    soft_time_limit=75,
    autoretry_for=(DatabaseError,),
    retry_backoff=True,
    max_retries=5,
)
def deliver_webhook(delivery_id: str, deferrals: int = 0) -> None:
    """One attempt of one pending delivery (its queue: ``webhooks``). Safe to run twice: the
    attempt claims its row, and the endpoint's failures are recorded as attempts, not raised.
    ``deferrals``: how many times it found every slot of its endpoint taken (it waits longer)."""
    outbox.webhook_delivery_attempt(delivery_id=delivery_id, deferrals=deferrals)


@shared_task(name="settings_app.sweep_webhook_deliveries", ignore_result=True, time_limit=60, soft_time_limit=50)
def sweep_webhook_deliveries() -> int:
    """Re-enqueue due or stuck pending deliveries (nothing is lost to a dead worker or broker)."""
    return outbox.webhook_deliveries_sweep()


@shared_task(name="settings_app.clean_expired_sessions", ignore_result=True, time_limit=300, soft_time_limit=240)
def clean_expired_sessions() -> int:
    """Delete sessions that expired or were revoked long ago."""
    return sessions.user_sessions_clean_expired()
