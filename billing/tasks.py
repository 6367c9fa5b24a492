"""Celery tasks of billing: thin wrappers around services."""

import logging
from datetime import datetime, timedelta

from celery import shared_task
from django.conf import settings

from audit.models import SystemEvent
from audit.services import system_event_record

from .services import dunning, invoices, notices, renewals, stale_orders, usage_alerts

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
    return _mail_with_retries(
        self,
        lambda: invoices.invoice_send(invoice_id=invoice_id),
        given_up=lambda exc: _invoice_send_given_up(
            invoice_id=invoice_id, error=exc, attempts=self.request.retries + 1
        ),
    )


@shared_task(name="billing.invoices_send", acks_late=True, time_limit=600, soft_time_limit=540, ignore_result=True)
def invoices_send(invoice_ids: list[str]) -> int:
    """Queue each invoice's e-mail (``billing.invoice_send``, retried on its own): a renewal batch
    hands its invoices over in one message."""
    for invoice_id in invoice_ids:
        invoices.invoice_send_enqueue(invoice_id)
    return len(invoice_ids)


def _mail_with_retries(task, send, *, given_up) -> bool:
    """Run ``send``; a mail server's failure (``OSError``) is retried with a doubling wait, and
    after the last retry ``given_up(exc)`` is told and False returned."""
    try:
        return send()
    except OSError as exc:
        if task.request.retries >= task.max_retries:
            given_up(exc)
            return False
        raise task.retry(exc=exc, countdown=INVOICE_SEND_FIRST_RETRY_SECONDS * 2**task.request.retries) from exc


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


@shared_task(name="billing.renew_subscriptions", ignore_result=True, time_limit=300, soft_time_limit=240)
def renew_subscriptions() -> int:
    """Hand every subscription whose period ended to the workers, in batches
    (``billing.renew_subscription_batch``); returns how many batches were sent."""
    return renewals.subscriptions_renew_dispatch()


@shared_task(
    name="billing.renew_subscription_batch", acks_late=True, ignore_result=True, time_limit=600, soft_time_limit=540
)
def renew_subscription_batch(subscription_ids: list[str], now: str) -> int:
    """Issue the renewal invoices of one batch and make their first collection attempts. Late
    acknowledged: a batch whose worker died is delivered again and renews what is still due."""
    return renewals.subscriptions_renew_batch(subscription_ids=subscription_ids, now=datetime.fromisoformat(now))


@shared_task(name="billing.collect_invoice", ignore_result=True, time_limit=120, soft_time_limit=100)
def collect_invoice(invoice_id: str) -> str:
    """Make an issued subscription invoice's next collection attempt (a renewal's card charge).
    Not acknowledged late: a charge is never made twice for a redelivered message. A renewal's
    invoice queued here is also due for an attempt in the database (``next_collection_at``), so
    one whose message is lost is charged by dunning's next pass."""
    return renewals.invoice_collect(invoice_id=invoice_id)


@shared_task(name="billing.dun_subscriptions", ignore_result=True, time_limit=1800, soft_time_limit=1700)
def dun_subscriptions() -> dict:
    """Retry failed renewals when due, mark overdue ones past due, suspend after the grace period."""
    return dunning.subscriptions_dun()


@shared_task(name="billing.check_usage_alerts", ignore_result=True, time_limit=600, soft_time_limit=540)
def check_usage_alerts() -> int:
    """Alert subscriptions whose AI usage this month reached 80% or 100% of their plan's allowance."""
    return usage_alerts.usage_alerts_check()


@shared_task(
    name="billing.send_notice",
    bind=True,
    acks_late=True,
    max_retries=INVOICE_SEND_MAX_RETRIES,
    time_limit=120,
    soft_time_limit=100,
    ignore_result=True,
)
def send_notice(self, kind: str, object_id: str) -> bool:
    """E-mail a billing notice (failed payment, usage threshold); the mail server's failures are
    retried as invoice e-mails are."""
    return _mail_with_retries(
        self,
        lambda: notices.notice_send(kind=kind, object_id=object_id),
        given_up=lambda exc: logger.error("Billing notice %s %s not e-mailed: %s", kind, object_id, exc),
    )
