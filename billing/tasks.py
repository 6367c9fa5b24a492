"""Celery tasks of billing: thin wrappers around services."""

from datetime import timedelta

from celery import shared_task
from django.conf import settings

from . import services


@shared_task(
    name="billing.invoice_send",
    acks_late=True,
    autoretry_for=(OSError,),
    retry_backoff=30,
    retry_backoff_max=1800,
    max_retries=8,
    time_limit=120,
    soft_time_limit=100,
    ignore_result=True,
)
def invoice_send(invoice_id: str) -> bool:
    """E-mail an invoice (HTML body, PDF attached) to its buyer. Sending twice is harmless."""
    return services.invoice_send(invoice_id=invoice_id)


@shared_task(name="billing.cancel_stale_orders", ignore_result=True, time_limit=300, soft_time_limit=240)
def cancel_stale_orders() -> int:
    """Cancel orders unpaid for ``ORDER_PENDING_TTL_HOURS``, giving their coupons back."""
    return services.order_cancel_stale(older_than=timedelta(hours=settings.ORDER_PENDING_TTL_HOURS))
