"""Renewal and collection: at each period boundary the beat job issues a subscription's renewal
invoice exactly once, then collects it through the subscription's gateway (Stripe: an
off-session charge of the saved method; bank transfer: awaited until the due date).

Exactly once, under any number of concurrent runs: a renewal locks the subscription row and
re-reads that its period has ended, so the second run finds it renewed; the invoice's unique
``(subscription, period_start)`` for renewals is the last line of defence. Each collection
attempt is claimed with one conditional UPDATE of the invoice's attempt counter, so an attempt
is made once and Stripe's idempotency key (invoice + attempt) makes a retried call harmless.
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db import transaction
from django.utils import timezone

from audit.models import AuditLog
from audit.services import audit_record
from billing.gateways import Collection, gateway_backend
from billing.models import Invoice, Subscription
from billing.periods import organization_zone, period_bounds
from celaest.errors import InvalidInput
from licensing.models import SubscriptionPlan
from licensing.services import license_change_plan
from settings_app.events import emit_event
from settings_app.runtime import system_config_get

from .event_data import invoice_event_data, subscription_event_data
from .notices import payment_failed_notice_enqueue
from .subscription_invoices import (
    InvoiceDraft,
    grace_period,
    invoice_draft,
    license_keep_through,
    plan_line,
    subscription_invoice_issue,
    subscription_invoice_paid,
    subscription_mark_past_due,
    usage_lines,
)

#: subscriptions the renewal job renews (an incomplete one never paid; a paused one is not billed)
RENEWING = (Subscription.Status.TRIALING, Subscription.Status.ACTIVE, Subscription.Status.PAST_DUE)
RETRY_DAYS_KEY = "billing.dunning_retry_days"
DEFAULT_RETRY_DAYS = (1, 3, 5)


def dunning_retry_days() -> list[int]:
    """Days after an invoice's due date on which a failed charge is retried (system config
    ``billing.dunning_retry_days``, a JSON list such as ``[1, 3, 5]``)."""
    days = system_config_get(RETRY_DAYS_KEY, list(DEFAULT_RETRY_DAYS), list)
    return sorted(int(day) for day in days if isinstance(day, int | float) and day > 0)


def _cancel_at_period_end(subscription: Subscription) -> None:
    before = subscription.status
    subscription.status = Subscription.Status.CANCELLED
    subscription.cancelled_at = subscription.current_period_end
    subscription.save(update_fields=["status", "cancelled_at", "updated_at"])
    audit_record(
        action=AuditLog.Action.UPDATE,
        resource=subscription,
        organization=subscription.organization,
        changes={"status": [before, subscription.status], "cancel_at_period_end": [True, True]},
    )
    emit_event(
        "subscription.cancelled", organization=subscription.organization, payload=subscription_event_data(subscription)
    )


@dataclass(frozen=True)
class NextRenewal:
    """What the subscription's next renewal bills: a scheduled plan or interval change applied
    (a new interval counts its periods from the boundary), the period, and its lines (the plan
    and the overage of the usage months closed by then)."""

    plan: SubscriptionPlan
    interval: str
    anchor: datetime
    index: int
    period: tuple[datetime, datetime]
    lines: list
    usage_billed_through: date | None


def next_renewal(subscription: Subscription) -> NextRenewal:
    plan = subscription.pending_plan or subscription.plan
    interval = subscription.pending_interval or subscription.interval
    anchor, index = subscription.billing_anchor, subscription.periods_billed
    if interval != subscription.interval:
        anchor, index = subscription.current_period_end, 0
    zone = organization_zone(subscription.organization)
    period = period_bounds(anchor=anchor, index=index, interval=interval, zone=zone)
    overage, billed_through = usage_lines(subscription=subscription, before=period[0].date())
    lines = [plan_line(plan=plan, interval=interval, period=period), *overage]
    return NextRenewal(plan, interval, anchor, index, period, lines, billed_through)


def subscription_upcoming_invoice(subscription: Subscription) -> tuple[NextRenewal, InvoiceDraft]:
    """The next renewal invoice as it would be issued now (nothing is written)."""
    renewal = next_renewal(subscription)
    return renewal, invoice_draft(subscription=subscription, lines=renewal.lines)


@transaction.atomic
def subscription_renew(*, subscription_id, now=None) -> Invoice | None:
    """Issue the renewal invoice of a subscription whose period has ended, and move it to the
    next period; None when there is nothing to do (not due, renewed by a concurrent run, or
    cancelled at its period end). Usage months that closed are billed on it as overage lines."""
    now = now or timezone.now()
    subscription = (
        Subscription.objects.select_for_update(of=("self",))
        .select_related("organization", "plan", "pending_plan", "user", "gateway", "coupon", "license")
        .filter(pk=subscription_id, status__in=RENEWING, current_period_end__lte=now)
        .first()
    )
    if subscription is None:
        return None
    if subscription.cancel_at_period_end:
        _cancel_at_period_end(subscription)
        return None
    renewal = next_renewal(subscription)
    before = subscription.status
    subscription.plan, subscription.currency = renewal.plan, renewal.plan.currency
    subscription.interval, subscription.billing_anchor = renewal.interval, renewal.anchor
    subscription.pending_plan, subscription.pending_interval = None, ""
    subscription.current_period_start, subscription.current_period_end = renewal.period
    subscription.periods_billed = renewal.index + 1
    subscription.usage_billed_through = renewal.usage_billed_through
    if before == Subscription.Status.TRIALING:
        subscription.status = Subscription.Status.ACTIVE  # the trial converts to paid
    subscription.save()
    if subscription.license_id and subscription.license.plan_id != renewal.plan.pk:  # a change at the period end
        license_change_plan(license=subscription.license, plan=renewal.plan)
    invoice = subscription_invoice_issue(
        subscription=subscription,
        now=now,
        reason=Invoice.Reason.SUBSCRIPTION_CYCLE,
        period=renewal.period,
        lines=renewal.lines,
    )
    if invoice.status == Invoice.Status.ISSUED:
        # Valid while the money is awaited, until dunning's grace period ends.
        license_keep_through(license=subscription.license, until=invoice.due_at + grace_period())
    emit_event(
        "subscription.renewed", organization=subscription.organization, payload=subscription_event_data(subscription)
    )
    return invoice


def invoice_collect(*, invoice_id) -> str:
    """Make the next collection attempt of an issued subscription invoice; returns the outcome
    (``paid``, ``pending``, ``failed``, or ``skipped`` when another run claimed the attempt or the
    invoice is no longer open). Runs outside any transaction: it may call the gateway."""
    invoice = (
        Invoice.objects.select_related("gateway", "subscription__payment_method")
        .filter(pk=invoice_id, status=Invoice.Status.ISSUED, subscription__isnull=False)
        .first()
    )
    if invoice is None or invoice.gateway is None:
        return "skipped"
    attempt = invoice.collection_attempts + 1
    claimed = Invoice.objects.filter(
        pk=invoice.pk, status=Invoice.Status.ISSUED, collection_attempts=invoice.collection_attempts
    ).update(collection_attempts=attempt, next_collection_at=None, updated_at=timezone.now())
    if not claimed:
        return "skipped"
    invoice.collection_attempts = attempt
    collection = gateway_backend(invoice.gateway).invoice_collect(
        invoice=invoice, payment_method=invoice.subscription.payment_method, attempt=attempt
    )
    invoice_collection_record(invoice_id=invoice.pk, collection=collection, attempt=attempt)
    return collection.outcome


@transaction.atomic
def invoice_collection_record(*, invoice_id, collection: Collection, attempt: int) -> Invoice:
    """Record a collection attempt: paid (the subscription and its license follow), pending
    (a transfer is awaited until the due date), or failed (past due, the next retry scheduled
    from ``billing.dunning_retry_days``, the billing contact e-mailed)."""
    if collection.outcome == "paid":
        return subscription_invoice_paid(invoice=Invoice(pk=invoice_id), reference=collection.reference)
    invoice = Invoice.objects.select_for_update().get(pk=invoice_id)
    if invoice.status != Invoice.Status.ISSUED or collection.outcome != "failed":
        return invoice
    retries = dunning_retry_days()
    due = invoice.due_at or invoice.issued_at
    invoice.next_collection_at = due + timedelta(days=retries[attempt - 1]) if attempt <= len(retries) else None
    invoice.last_collection_error = collection.error[:255]
    invoice.save(update_fields=["next_collection_at", "last_collection_error", "updated_at"])
    audit_record(
        action=AuditLog.Action.ACTION,
        resource=invoice,
        organization=invoice.organization,
        changes={"payment_failed": [None, collection.error or "failed"], "attempt": [None, attempt]},
    )
    emit_event(
        "invoice.payment_failed",
        organization=invoice.organization,
        payload={**invoice_event_data(invoice), "attempt": attempt, "error": collection.error},
    )
    subscription = Subscription.objects.select_for_update(of=("self",)).select_related("organization", "plan")
    subscription_mark_past_due(subscription=subscription.get(pk=invoice.subscription_id), now=timezone.now())
    payment_failed_notice_enqueue(invoice_id=invoice.pk)
    return invoice


def subscriptions_renew_due(*, now=None, limit: int = 1000) -> int:
    """The beat job: renew every subscription whose period has ended (each in its own short
    transaction), then make each new invoice's first collection attempt. Returns how many
    invoices were issued."""
    now = now or timezone.now()
    due = (
        Subscription.objects.filter(status__in=RENEWING, current_period_end__lte=now)
        .order_by("current_period_end")
        .values_list("pk", flat=True)[:limit]
    )
    issued = 0
    for subscription_id in list(due):
        invoice = subscription_renew(subscription_id=subscription_id, now=now)
        if invoice is None:
            continue
        issued += 1
        if invoice.status == Invoice.Status.ISSUED:
            invoice_collect(invoice_id=invoice.pk)
    return issued


@transaction.atomic
def subscription_payment_method_set(
    *, subscription: Subscription, payment_method, actor=None, source: str = "system", ip_address=None
) -> Subscription:
    """Charge ``payment_method`` (one of the organization's) from now on."""
    if payment_method.organization_id != subscription.organization_id:
        raise InvalidInput("Unknown payment method.", details={"payment_method": ["Unknown."]})
    before = subscription.payment_method_id
    Subscription.objects.filter(pk=subscription.pk).update(payment_method=payment_method, updated_at=timezone.now())
    subscription.payment_method = payment_method
    audit_record(
        action=AuditLog.Action.UPDATE,
        resource=subscription,
        user=actor,
        organization=subscription.organization,
        changes={"payment_method": [str(before) if before else None, str(payment_method.pk)]},
        ip_address=ip_address,
        source=source,
    )
    return subscription


def subscription_pay_now(
    *, subscription: Subscription, payment_method=None, actor=None, source: str = "system", ip_address=None
) -> dict[str, str]:
    """Collect the subscription's open invoices now (the customer fixed their card), optionally
    with another of the organization's methods; returns each invoice's outcome by number. A
    payment lifts dunning's suspension at once."""
    if payment_method is not None:
        subscription_payment_method_set(
            subscription=subscription, payment_method=payment_method, actor=actor, source=source, ip_address=ip_address
        )
    open_invoices = subscription.invoices.filter(status=Invoice.Status.ISSUED).order_by("issued_at")
    return {number: invoice_collect(invoice_id=pk) for pk, number in open_invoices.values_list("pk", "invoice_number")}
