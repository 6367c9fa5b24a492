"""Celery tasks of settings_app: thin wrappers around services."""

from celery import shared_task

from . import services


@shared_task(name="settings_app.flush_api_key_usage", ignore_result=True, time_limit=120, soft_time_limit=100)
def flush_api_key_usage() -> int:
    """Move API key use counts from the shared cache into the database."""
    return services.api_key_usage_flush_recent()
