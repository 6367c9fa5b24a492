"""Celery tasks of billing: thin wrappers around services."""

from celery import shared_task

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
