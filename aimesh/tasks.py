"""Celery jobs of the AI mesh: restoring provider keys that have recovered."""

from celery import shared_task

from aimesh.routing import keys_probe_unhealthy


@shared_task(name="aimesh.probe_unhealthy_keys", soft_time_limit=120, time_limit=150)
def probe_unhealthy_keys() -> dict:
    return keys_probe_unhealthy()
