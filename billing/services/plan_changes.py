"""Changes to a running subscription: upgrade at once with a prorated charge, downgrade (or a
change of interval) at the period end, cancel at the period end or at once with a prorated
credit, pause and resume.

Every prorated amount comes from one formula, ``billing.pricing.prorated_amount``:

    prorated = price × (period_end − at) / (period_end − period_start)

An upgrade charges ``prorated(new price) − prorated(old price)`` (list prices of the same
interval) plus tax on an invoice of its own, without the coupon; cancelling at once credits
``prorated(what the period's plan lines charged, net of the coupon's share)`` plus tax, as a
credit note (refunded through Stripe, credited for a bank transfer). ``plan_change_quote`` computes
what a change costs, and both the preview endpoint and the change itself use it.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from audit.models import AuditLog
from audit.services import audit_record
from billing.models import CreditNote, Invoice, InvoiceLine, PaymentGateway, Subscription
from billing.pricing import ChargeLine, prorated_amount
from celaest.errors import Conflict, InvalidInput
from identity.models import User
from licensing.models import License, SubscriptionPlan
from licensing.services import LicenseStateConflict, license_change_plan, license_reinstate, license_suspend
from settings_app.events import emit_event

from .credit_notes import credit_note_issue
from .event_data import invoice_event_data, subscription_event_data
from .subscription_invoices import (
    InvoiceDraft,
    invoice_draft,
    license_keep_through,
    plan_price,
    subscription_invoice_issue,
)

PAUSED_REASON = "Subscription paused"
CANCELLED_REASON = "Subscription cancelled"


def _locked(subscription: Subscription) -> Subscription:
    return (
        Subscription.objects.select_for_update(of=("self",))
        .select_related("organization", "plan", "pending_plan", "license", "gateway", "user", "coupon")
        .get(pk=subscription.pk)
    )


def _record(subscription: Subscription, *, event: str, changes: dict, actor, source, ip_address=None) -> None:
    audit_record(
        action=AuditLog.Action.UPDATE,
        resource=subscription,
        user=actor,
        organization=subscription.organization,
        changes=changes,
        ip_address=ip_address,
        source=source,
    )
    emit_event(event, organization=subscription.organization, payload=subscription_event_data(subscription))


# --- plan changes --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanChangeQuote:
    """What changing to ``plan``/``interval`` costs: at once (an upgrade: ``draft`` is the
    prorated invoice; a trial: nothing) or at the period end (a downgrade or a new interval:
    ``next_amount`` is the plan's price then, before tax and coupon)."""

    plan: SubscriptionPlan
    interval: str
    effective: str  # "now" or "period_end"
    at: datetime
    draft: InvoiceDraft | None
    next_amount: Decimal


def plan_change_quote(*, subscription: Subscription, plan: SubscriptionPlan, interval: str, at) -> PlanChangeQuote:
    if interval not in Subscription.Interval.values:
        raise InvalidInput("The interval is month or year.", details={"interval": ["Not month or year."]})
    if not plan.is_active:
        raise InvalidInput("This plan is not offered.", details={"plan": ["Inactive."]})
    if plan.currency != subscription.currency:
        raise InvalidInput("The new plan is priced in another currency.", details={"plan": ["Other currency."]})
    if plan.pk == subscription.plan_id and interval == subscription.interval:
        raise InvalidInput("This is the subscription's current plan.", code="no_change", details={"plan": ["Same."]})
    if subscription.status not in (Subscription.Status.ACTIVE, Subscription.Status.TRIALING):
        raise Conflict(
            f"A {subscription.status} subscription cannot change plans.",
            code="subscription_not_changeable",
            details={"status": subscription.status},
        )
    next_amount = plan_price(plan=plan, interval=interval)
    if subscription.status == Subscription.Status.TRIALING:
        return PlanChangeQuote(plan, interval, "now", at, None, next_amount)
    old = plan_price(plan=subscription.plan, interval=subscription.interval)
    if interval != subscription.interval or next_amount <= old:
        return PlanChangeQuote(plan, interval, "period_end", at, None, next_amount)
    period = (subscription.current_period_start, subscription.current_period_end)
    unused = prorated_amount(price=old, period_start=period[0], period_end=period[1], at=at)
    remaining = prorated_amount(price=next_amount, period_start=period[0], period_end=period[1], at=at)
    until = f"{at:%Y-%m-%d} – {period[1]:%Y-%m-%d}"
    kind = InvoiceLine.Kind.PRORATION
    lines = [
        ChargeLine(kind, f"Unused time on {subscription.plan.name} ({until})", Decimal(1), -unused, -unused),
        ChargeLine(kind, f"Remaining time on {plan.name} ({until})", Decimal(1), remaining, remaining),
    ]
    draft = invoice_draft(subscription=subscription, lines=lines, apply_coupon=False)
    return PlanChangeQuote(plan, interval, "now", at, draft, next_amount)


@transaction.atomic
def subscription_change_plan(
    *,
    subscription: Subscription,
    plan: SubscriptionPlan,
    interval: str,
    actor: User | None = None,
    source: str = "system",
    ip_address: str | None = None,
) -> tuple[Subscription, Invoice | None]:
    """Change the subscription's plan as ``plan_change_quote`` says: an upgrade at once (its
    prorated invoice issued here, collected by the caller after commit), anything else at the
    period end. Returns the subscription and the invoice issued, if any."""
    subscription = _locked(subscription)
    now = timezone.now()
    quote = plan_change_quote(subscription=subscription, plan=plan, interval=interval, at=now)
    before = {"plan": subscription.plan.code, "interval": subscription.interval}
    invoice = None
    if quote.effective == "now":
        if quote.draft is not None:
            invoice = subscription_invoice_issue(
                subscription=subscription,
                now=now,
                reason=Invoice.Reason.SUBSCRIPTION_UPDATE,
                period=(now, subscription.current_period_end),
                lines=quote.draft.lines,
                apply_coupon=False,
            )
        subscription.plan, subscription.interval = plan, interval
        subscription.pending_plan, subscription.pending_interval = None, ""
        subscription.save(update_fields=["plan", "interval", "pending_plan", "pending_interval", "updated_at"])
        if subscription.license_id:
            license_change_plan(license=subscription.license, plan=plan, source=source)
    else:
        subscription.pending_plan = plan if plan.pk != subscription.plan_id else None
        subscription.pending_interval = interval if interval != subscription.interval else ""
        subscription.save(update_fields=["pending_plan", "pending_interval", "updated_at"])
    _record(
        subscription,
        event="subscription.updated",
        changes={
            "plan": [before["plan"], plan.code],
            "interval": [before["interval"], interval],
            "effective": [None, quote.effective],
            "invoice": [None, invoice.invoice_number if invoice else None],
        },
        actor=actor,
        source=source,
        ip_address=ip_address,
    )
    return subscription, invoice


# --- cancel --------------------------------------------------------------------------------------


def _period_invoices(subscription: Subscription):
    """The paid invoices that bought the current period: its start or renewal, and upgrades."""
    return subscription.invoices.filter(
        status=Invoice.Status.PAID,
        period_end=subscription.current_period_end,
        billing_reason__in=[
            Invoice.Reason.SUBSCRIPTION_CREATE,
            Invoice.Reason.SUBSCRIPTION_CYCLE,
            Invoice.Reason.SUBSCRIPTION_UPDATE,
        ],
    ).order_by("issued_at")


def unused_credit(*, invoice: Invoice, at) -> Decimal:
    """What cancelling at ``at`` credits of the period ``invoice`` bought, before tax: the
    prorated share of its plan lines, net of the coupon's share of the invoice (exact)."""
    plan_lines = sum(
        (line.amount for line in invoice.lines.filter(kind__in=[InvoiceLine.Kind.PLAN, InvoiceLine.Kind.PRORATION])),
        Decimal("0"),
    )
    if invoice.subtotal <= 0 or plan_lines <= 0:
        return Decimal("0")
    charged = plan_lines * (invoice.subtotal - invoice.discount_total) / invoice.subtotal
    return prorated_amount(price=charged, period_start=invoice.period_start, period_end=invoice.period_end, at=at)


def _void(invoice: Invoice, *, now, actor, source) -> None:
    invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
    if invoice.status != Invoice.Status.ISSUED:
        return
    invoice.status, invoice.voided_at, invoice.next_collection_at = Invoice.Status.VOID, now, None
    invoice.save(update_fields=["status", "voided_at", "next_collection_at", "updated_at"])
    audit_record(
        action=AuditLog.Action.UPDATE,
        resource=invoice,
        user=actor,
        organization=invoice.organization,
        changes={"status": [Invoice.Status.ISSUED, Invoice.Status.VOID]},
        source=source,
    )
    emit_event("invoice.voided", organization=invoice.organization, payload=invoice_event_data(invoice))


@transaction.atomic
def subscription_cancel(
    *,
    subscription: Subscription,
    at_period_end: bool = True,
    actor: User | None = None,
    source: str = "system",
    ip_address: str | None = None,
) -> tuple[Subscription, list[CreditNote]]:
    """Cancel at the period end (the license runs to it, nothing more is billed), or at once: its
    open invoices void, the unused part of the period's paid invoices credited (``unused_credit``),
    the license suspended. Returns the subscription and the credit notes issued."""
    subscription = _locked(subscription)
    if subscription.status == Subscription.Status.CANCELLED:
        raise Conflict("This subscription is already cancelled.", code="subscription_cancelled")
    if at_period_end:
        if not subscription.cancel_at_period_end:
            subscription.cancel_at_period_end = True
            subscription.save(update_fields=["cancel_at_period_end", "updated_at"])
            _record(
                subscription,
                event="subscription.updated",
                changes={"cancel_at_period_end": [False, True]},
                actor=actor,
                source=source,
                ip_address=ip_address,
            )
        return subscription, []
    now = timezone.now()
    for invoice in subscription.invoices.filter(status=Invoice.Status.ISSUED):
        _void(invoice, now=now, actor=actor, source=source)
    notes = []
    for paid in _period_invoices(subscription).select_related("gateway"):
        credit = unused_credit(invoice=paid, at=now)
        if credit >= Decimal("0.01"):
            notes.append(
                credit_note_issue(
                    invoice=paid,
                    amount=credit,
                    reason=f"Unused time of {subscription.plan.name} after cancellation on {now:%Y-%m-%d}",
                    refund=paid.gateway is not None and paid.gateway.provider == PaymentGateway.Provider.STRIPE,
                    actor=actor,
                    source=source,
                )
            )
    before = subscription.status
    subscription.status, subscription.cancelled_at = Subscription.Status.CANCELLED, now
    subscription.save(update_fields=["status", "cancelled_at", "updated_at"])
    license = subscription.license
    if license.status in (License.Status.ACTIVE, License.Status.TRIAL):
        license_suspend(license=license, reason=CANCELLED_REASON, actor=actor, source=source)
    _record(
        subscription,
        event="subscription.cancelled",
        changes={
            "status": [before, subscription.status],
            "credit_notes": [None, [note.credit_note_number for note in notes]],
        },
        actor=actor,
        source=source,
        ip_address=ip_address,
    )
    return subscription, notes


# --- pause and resume ----------------------------------------------------------------------------


@transaction.atomic
def subscription_pause(
    *, subscription: Subscription, actor: User | None = None, source: str = "system", ip_address=None
) -> Subscription:
    """Pause an active subscription: nothing is billed and the license is suspended until it resumes."""
    subscription = _locked(subscription)
    if subscription.status != Subscription.Status.ACTIVE:
        raise Conflict(
            f"Only an active subscription can be paused; this one is {subscription.status}.",
            code="subscription_not_pausable",
        )
    subscription.status, subscription.paused_at = Subscription.Status.PAUSED, timezone.now()
    subscription.save(update_fields=["status", "paused_at", "updated_at"])
    license = subscription.license
    if license.status in (License.Status.ACTIVE, License.Status.TRIAL):
        license_suspend(license=license, reason=PAUSED_REASON, actor=actor, source=source)
    _record(
        subscription,
        event="subscription.paused",
        changes={"status": [Subscription.Status.ACTIVE, Subscription.Status.PAUSED]},
        actor=actor,
        source=source,
        ip_address=ip_address,
    )
    return subscription


@transaction.atomic
def subscription_resume(
    *, subscription: Subscription, actor: User | None = None, source: str = "system", ip_address=None
) -> Subscription:
    """Resume a paused subscription: the paid period is lengthened by the time it was paused (its
    end becomes the new anchor of the periods), and the license is reinstated and runs to it."""
    subscription = _locked(subscription)
    if subscription.status != Subscription.Status.PAUSED:
        raise Conflict("Only a paused subscription can be resumed.", code="subscription_not_paused")
    now = timezone.now()
    end = subscription.current_period_end + (now - subscription.paused_at)
    subscription.status, subscription.paused_at = Subscription.Status.ACTIVE, None
    subscription.current_period_end, subscription.billing_anchor, subscription.periods_billed = end, end, 0
    subscription.save(
        update_fields=["status", "paused_at", "current_period_end", "billing_anchor", "periods_billed", "updated_at"]
    )
    license = subscription.license
    if license.status == License.Status.SUSPENDED and license.status_reason == PAUSED_REASON:
        try:
            license = license_reinstate(license=license, actor=actor, source=source)
        except LicenseStateConflict:
            pass  # changed by staff meanwhile
    license_keep_through(license=license, until=end, source=source)
    _record(
        subscription,
        event="subscription.resumed",
        changes={
            "status": [Subscription.Status.PAUSED, Subscription.Status.ACTIVE],
            "current_period_end": [None, end.isoformat()],
        },
        actor=actor,
        source=source,
        ip_address=ip_address,
    )
    return subscription
