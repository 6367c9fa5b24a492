"""Celery jobs of the AI mesh: restoring provider keys that have recovered, writing key use counts."""

from celery import shared_task

from aimesh.routing import keys_probe_unhealthy, keys_usage_flush


@shared_task(name="aimesh.probe_unhealthy_keys", soft_time_limit=120, time_limit=150)
def probe_unhealthy_keys() -> dict:
    return keys_probe_unhealthy()


@shared_task(name="aimesh.flush_key_usage", ignore_result=True, soft_time_limit=100, time_limit=120)
def flush_key_usage() -> int:
    """Move pooled keys' use counts from the shared cache into the database."""
    return keys_usage_flush()
