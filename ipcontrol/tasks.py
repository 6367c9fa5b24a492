"""Celery tasks of IP control: thin wrappers around services."""

from celery import shared_task
from django.utils import timezone

from . import buffer, collisions, partitions, rollups, services


@shared_task(
    name="ipcontrol.flush_validations", ignore_result=True, acks_late=True, time_limit=120, soft_time_limit=100
)
def flush_validations() -> int:
    """Move buffered validation attempts into license_validations (and detect collisions)."""
    return buffer.validation_buffer_flush()


@shared_task(name="ipcontrol.deactivate_stale_bindings", ignore_result=True, time_limit=600, soft_time_limit=540)
def deactivate_stale_bindings() -> int:
    return services.bindings_deactivate_stale()


@shared_task(name="ipcontrol.release_lapsed_leases", ignore_result=True, time_limit=120, soft_time_limit=100)
def release_lapsed_leases() -> int:
    """Every 15 s: free the seats of machines whose heartbeat lease lapsed (``machine.heartbeat_lost``)."""
    return services.leases_release_lapsed()


@shared_task(name="ipcontrol.purge_validations", ignore_result=True, time_limit=300, soft_time_limit=280)
def purge_validations() -> int:
    """Hourly: delete validation attempts past their retention, in bounded batches."""
    return services.validations_purge()


@shared_task(name="ipcontrol.prepare_validation_partitions", ignore_result=True, time_limit=120, soft_time_limit=100)
def prepare_validation_partitions() -> list[str]:
    """Every six hours: this month's and the next months' partitions of license_validations."""
    return partitions.validation_partitions_prepare(now=timezone.now())


@shared_task(name="ipcontrol.rollup_validation_days", ignore_result=True, time_limit=600, soft_time_limit=540)
def rollup_validation_days() -> int:
    """Hourly: today's and yesterday's validation counts per license and result."""
    return rollups.validation_days_rollup_recent(now=timezone.now())


@shared_task(name="ipcontrol.auto_resolve_collisions", ignore_result=True, time_limit=300, soft_time_limit=270)
def auto_resolve_collisions() -> int:
    return collisions.collisions_auto_resolve()
