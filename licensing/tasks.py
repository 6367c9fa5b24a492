"""Celery tasks of licensing: thin wrappers around services."""

from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from audit.services import system_event_record

from . import meter, rollup, services


@shared_task(name="licensing.flush_usage_meter", ignore_result=True, time_limit=60, soft_time_limit=50)
def flush_usage_meter() -> int:
    """Every second: the AI usage counted in Redis into PostgreSQL (``licensing.meter``)."""
    return meter.meter_flush()


@shared_task(name="licensing.expire_licenses", ignore_result=True, time_limit=600, soft_time_limit=540)
def expire_licenses() -> int:
    """Mark licenses past their expiry as expired (each one audited, with a ``license.expired`` event)."""
    expired = services.license_expire_due()
    if expired:
        system_event_record(
            event_type="licenses.expired", message=f"{expired} license(s) expired", source="licensing.expire_licenses"
        )
    return expired


# The name it had when analytics ran it: the beat entry, its queue (the default one, with the long
# reports) and the job's run history all go by it.
@shared_task(name="analytics.rollup_usage_logs", ignore_result=True, time_limit=1800, soft_time_limit=1700)
def rollup_usage_logs() -> int:
    """Nightly: reconcile this month's license usage rows (and last month's on the 1st)."""
    today = timezone.localdate()
    written = rollup.usage_log_rollup(month=today)
    if today.day == 1:
        written += rollup.usage_log_rollup(month=today - timedelta(days=1))
    return written
