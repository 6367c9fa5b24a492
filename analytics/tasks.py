"""Celery tasks of analytics: thin wrappers around services."""

from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from . import services


@shared_task(name="analytics.aggregate_roi_today", ignore_result=True, time_limit=600, soft_time_limit=540)
def aggregate_roi_today() -> dict:
    """Hourly: the current day, week and month so far."""
    today = timezone.localdate()
    return services.roi_aggregate_all(date_from=today, date_to=today)


@shared_task(name="analytics.aggregate_roi_closing", ignore_result=True, time_limit=1800, soft_time_limit=1700)
def aggregate_roi_closing() -> dict:
    """Nightly: close yesterday's periods (late tasks and time zones behind UTC included)."""
    yesterday = timezone.localdate() - timedelta(days=1)
    return services.roi_aggregate_all(date_from=yesterday - timedelta(days=1), date_to=yesterday)


@shared_task(name="analytics.purge_telemetry", ignore_result=True, time_limit=1800, soft_time_limit=1700)
def purge_telemetry() -> int:
    """Daily: delete telemetry older than the retention (system config telemetry.retention_days)."""
    return services.telemetry_purge()
