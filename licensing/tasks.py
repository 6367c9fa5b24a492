"""Celery tasks of licensing: thin wrappers around services."""

from celery import shared_task

from audit.services import system_event_record

from . import services


@shared_task(name="licensing.expire_licenses", ignore_result=True, time_limit=600, soft_time_limit=540)
def expire_licenses() -> int:
    """Mark licenses past their expiry as expired (each one audited, with a ``license.expired`` event)."""
    expired = services.license_expire_due()
    if expired:
        system_event_record(
            event_type="licenses.expired", message=f"{expired} license(s) expired", source="licensing.expire_licenses"
        )
    return expired
