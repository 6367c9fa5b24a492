"""Dunning: what happens to a subscription invoice that is not paid.

- a failed card charge is retried on the days after the due date that
  ``billing.dunning_retry_days`` lists (system config, default ``[1, 3, 5]``), the billing
  contacts e-mailed after each failure (``renewals.invoice_collection_record``);
- a bank transfer not received by its due date makes the subscription past due;
- once the grace period (``billing.grace_days``, default 7) after the due date has passed, the
  license is suspended (``licensing.services.license_suspend``); a later payment reinstates it
  (``subscription_invoices.subscription_invoice_paid``).
"""

from django.db import transaction
from django.utils import timezone

from billing.models import Invoice, Subscription
from licensing.models import License
from licensing.services import LicenseStateConflict, license_suspend

from .renewals import invoice_collect
from .subscription_invoices import OVERDUE_REASON_PREFIX, grace_period, subscription_mark_past_due

_OPEN = {"status": Invoice.Status.ISSUED, "subscription__isnull": False}


def invoices_retry_due(*, now=None, limit: int = 1000) -> int:
    """Retry every failed charge whose retry is due. Returns how many attempts were made."""
    now = now or timezone.now()
    due = Invoice.objects.filter(**_OPEN, next_collection_at__lte=now).order_by("next_collection_at")
    attempts = 0
    for invoice_id in list(due.values_list("pk", flat=True)[:limit]):
        if invoice_collect(invoice_id=invoice_id) != "skipped":
            attempts += 1
    return attempts


@transaction.atomic
def _past_due(*, subscription_id, now) -> None:
    subscription = Subscription.objects.select_for_update(of=("self",)).select_related("organization", "plan")
    subscription_mark_past_due(subscription=subscription.get(pk=subscription_id), now=now)


@transaction.atomic
def _suspend(*, invoice: Invoice) -> bool:
    subscription = Subscription.objects.select_for_update(of=("self",)).select_related("license")
    license = subscription.get(pk=invoice.subscription_id).license
    if license.status not in (License.Status.ACTIVE, License.Status.TRIAL):
        return False
    try:
        license_suspend(license=license, reason=f"{OVERDUE_REASON_PREFIX}: invoice {invoice.invoice_number}")
    except LicenseStateConflict:
        return False  # changed meanwhile (revoked, suspended by staff)
    return True


def subscriptions_dun(*, now=None) -> dict[str, int]:
    """The dunning pass of the beat job: retries due, transfers overdue, grace periods over."""
    now = now or timezone.now()
    retried = invoices_retry_due(now=now)
    overdue = set(
        Invoice.objects.filter(**_OPEN, due_at__lte=now, subscription__status=Subscription.Status.ACTIVE).values_list(
            "subscription_id", flat=True
        )
    )
    for subscription_id in sorted(overdue):
        _past_due(subscription_id=subscription_id, now=now)
    beyond_grace = Invoice.objects.filter(
        **_OPEN,
        due_at__lte=now - grace_period(),
        subscription__license__status__in=[License.Status.ACTIVE, License.Status.TRIAL],
    ).order_by("due_at")
    suspended = sum(_suspend(invoice=invoice) for invoice in beyond_grace)
    return {"retried": retried, "past_due": len(overdue), "suspended": suspended}
