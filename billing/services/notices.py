"""E-mails to an organization's billing contacts about its subscription: a failed payment (each
attempt, with the next retry and when the license will be suspended) and usage thresholds.
Queued after commit (``billing.send_notice``), sent by the task."""

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction

from billing.models import Invoice, Subscription, UsageAlert
from celaest.celery import app as celery_app

from .subscription_invoices import grace_period


def billing_contacts(subscription: Subscription) -> list[str]:
    """The organization's billing address and the subscriber, once each."""
    addresses = [subscription.organization.email, subscription.user.email]
    return list(dict.fromkeys(address for address in addresses if address))


def _enqueue(kind: str, object_id) -> None:
    # Named, not imported: billing.tasks imports these services (see invoice_send_enqueue).
    transaction.on_commit(lambda: celery_app.signature("billing.send_notice", args=[kind, str(object_id)]).delay())


def payment_failed_notice_enqueue(*, invoice_id) -> None:
    _enqueue("payment_failed", invoice_id)


def usage_alert_notice_enqueue(*, alert_id) -> None:
    _enqueue("usage_alert", alert_id)


def _payment_failed_message(invoice_id) -> EmailMessage | None:
    invoice = (
        Invoice.objects.select_related("subscription__organization", "subscription__user", "subscription__plan")
        .filter(pk=invoice_id, subscription__isnull=False)
        .first()
    )
    if invoice is None or invoice.status != Invoice.Status.ISSUED:
        return None
    subscription = invoice.subscription
    retry = (
        f"We will try again on {invoice.next_collection_at:%Y-%m-%d}."
        if invoice.next_collection_at
        else "We will not retry automatically: update your payment method and pay the invoice."
    )
    suspension = (invoice.due_at or invoice.issued_at) + grace_period()
    body = (
        f"The payment of invoice {invoice.invoice_number} ({invoice.total} {invoice.currency}) for your "
        f"{subscription.plan.name} subscription failed (attempt {invoice.collection_attempts}: "
        f"{invoice.last_collection_error or 'declined'}).\n{retry}\n"
        f"Unless it is paid, your license will be suspended on {suspension:%Y-%m-%d}."
    )
    return EmailMessage(
        subject=f"Payment failed: invoice {invoice.invoice_number}",
        body=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=billing_contacts(subscription),
    )


def _usage_alert_message(alert_id) -> EmailMessage | None:
    alert = (
        UsageAlert.objects.select_related("subscription__organization", "subscription__user", "subscription__plan")
        .filter(pk=alert_id)
        .first()
    )
    if alert is None:
        return None
    subscription = alert.subscription
    body = (
        f"Your organization has used {alert.threshold_percent}% of the {alert.metric.replace('_', ' ')} included "
        f"in its {subscription.plan.name} plan this month ({alert.used.normalize():f} of "
        f"{alert.included.normalize():f})."
    )
    return EmailMessage(
        subject=f"{alert.threshold_percent}% of your plan's {alert.metric.replace('_', ' ')} used",
        body=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=billing_contacts(subscription),
    )


_MESSAGES = {"payment_failed": _payment_failed_message, "usage_alert": _usage_alert_message}


def notice_send(*, kind: str, object_id) -> bool:
    """Send one notice; False when there is nothing to say any more (paid since, deleted)."""
    message = _MESSAGES[kind](object_id)
    if message is None or not message.to:
        return False
    message.send()
    return True
