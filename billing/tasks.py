"""Celery tasks of billing: thin wrappers around services."""

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings

from audit.models import SystemEvent
from audit.services import system_event_record

from .services import invoices, stale_orders

logger = logging.getLogger(__name__)

#: Attempts of an invoice e-mail after the first, 1, 2, 4, ... 32 minutes apart (about an hour in
#: all): a mail server that is down longer than that is an outage for the staff to see, not a job
#: to retry without end.
INVOICE_SEND_MAX_RETRIES = 6
INVOICE_SEND_FIRST_RETRY_SECONDS = 60


@shared_task(
    name="billing.invoice_send",
    bind=True,
    acks_late=True,
    max_retries=INVOICE_SEND_MAX_RETRIES,
    time_limit=120,
    soft_time_limit=100,
    ignore_result=True,
)
def invoice_send(self, invoice_id: str) -> bool:
    """E-mail an invoice (HTML body, PDF attached) to its buyer. Sending twice is harmless.

    The mail server's failures (refused, timed out after ``EMAIL_TIMEOUT``, an SMTP error: all
    ``OSError``) are retried with a doubling wait; after the last one the task gives up with a
    ``billing.invoice_email_failed`` system event, and the staff resend it from the order admin."""
    try:
        return invoices.invoice_send(invoice_id=invoice_id)
    except OSError as exc:
        if self.request.retries >= self.max_retries:
            _invoice_send_given_up(invoice_id=invoice_id, error=exc, attempts=self.request.retries + 1)
            return False
        raise self.retry(exc=exc, countdown=INVOICE_SEND_FIRST_RETRY_SECONDS * 2**self.request.retries) from exc


def _invoice_send_given_up(*, invoice_id: str, error: OSError, attempts: int) -> None:
    logger.error("Invoice %s not e-mailed after %s attempts: %s", invoice_id, attempts, error)
    system_event_record(
        event_type="billing.invoice_email_failed",
        severity=SystemEvent.Severity.ERROR,
        message=f"Invoice {invoice_id} not e-mailed after {attempts} attempts; resend it from the order admin.",
        source="billing.invoice_send",
        data={"invoice": invoice_id, "attempts": attempts, "error": f"{type(error).__name__}: {error}"[:500]},
    )


@shared_task(name="billing.cancel_stale_orders", ignore_result=True, time_limit=300, soft_time_limit=240)
def cancel_stale_orders() -> int:
    """Cancel orders unpaid for ``ORDER_PENDING_TTL_HOURS``, giving their coupons back."""
    return stale_orders.order_cancel_stale(older_than=timedelta(hours=settings.ORDER_PENDING_TTL_HOURS))
