"""A subscription's invoices and what they do to it: issued for a period (the plan, the AI usage
beyond the plan of the months that closed, the coupon while it lasts, the organization's tax),
paid (the license extended to the period's end, reinstated if dunning suspended it), overdue
(the subscription past due).

While an invoice waits for its money the license stays valid until the invoice's due date plus
the grace period (``billing.grace_days``); dunning suspends it then.
"""

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from audit.models import AuditLog
from audit.services import audit_record
from billing.models import Coupon, Invoice, InvoiceLine, PaymentGateway, PlanBillingTerms, Subscription
from billing.pricing import ChargeLine, OrderAmounts, order_amounts_compute, overage_lines
from celaest.errors import Conflict
from identity.models import User
from licensing.models import BillingState, License, LicenseUsageLog, SubscriptionPlan
from licensing.services import license_billing_state_set, license_expire, license_reinstate, license_renew
from settings_app.events import emit_event
from settings_app.runtime import system_config_get

from .checkout import tax_rate_for
from .event_data import invoice_event_data, subscription_event_data
from .invoices import invoice_billing_details, invoice_send_enqueue
from .numbering import document_number_next

#: statuses in which a subscription bills and entitles (cancelled is the only end)
LIVE_STATUSES = (
    Subscription.Status.INCOMPLETE,
    Subscription.Status.TRIALING,
    Subscription.Status.ACTIVE,
    Subscription.Status.PAST_DUE,
    Subscription.Status.PAUSED,
)
#: what a license suspended by dunning says, so a payment lifts only that suspension
OVERDUE_REASON_PREFIX = "Payment overdue"

GRACE_DAYS_KEY = "billing.grace_days"
BANK_TRANSFER_DUE_DAYS_KEY = "billing.bank_transfer_due_days"


def grace_period() -> timedelta:
    return timedelta(days=system_config_get(GRACE_DAYS_KEY, 7, int))


def plan_terms(plan: SubscriptionPlan) -> PlanBillingTerms:
    """The plan's billing terms; a plan without any includes nothing and bills no overage."""
    terms = PlanBillingTerms.objects.filter(plan=plan).first()
    return terms if terms is not None else PlanBillingTerms(plan=plan)


def plan_price(*, plan: SubscriptionPlan, interval: str) -> Decimal:
    return plan.price_yearly if interval == Subscription.Interval.YEAR else plan.price_monthly


def plan_line(*, plan: SubscriptionPlan, interval: str, period: tuple) -> ChargeLine:
    price = plan_price(plan=plan, interval=interval)
    label = "yearly" if interval == Subscription.Interval.YEAR else "monthly"
    description = f"{plan.name} ({label}) {period[0]:%Y-%m-%d} – {period[1]:%Y-%m-%d}"
    return ChargeLine(InvoiceLine.Kind.PLAN, description[:255], Decimal(1), price, price)


def usage_lines(*, subscription: Subscription, before) -> tuple[list[ChargeLine], object]:
    """The overage of the license's usage months (``license_usage_log``) that closed before the
    date ``before`` and were not invoiced yet (however the periods were re-anchored by a pause or
    a new interval), and the end of the last such month."""
    months = LicenseUsageLog.objects.filter(license_id=subscription.license_id, period_end__lt=before)
    if subscription.usage_billed_through is not None:
        months = months.filter(period_end__gt=subscription.usage_billed_through)
    else:  # the first bill: months that ended once the paid subscription had begun (a trial's are free)
        months = months.filter(period_end__gte=(subscription.trial_end or subscription.created_at).date())
    months = months.order_by("period_start")
    months = list(months)
    if not months:
        return [], subscription.usage_billed_through
    terms = plan_terms(subscription.plan)
    lines = []
    for month in months:
        lines += overage_lines(
            terms=terms,
            requests=month.ai_requests_count,
            tokens_input=month.tokens_input,
            tokens_output=month.tokens_output,
            cost=month.calculated_cost,
            label=f"AI usage {month.period_start:%B %Y}",
        )
    return lines, months[-1].period_end


def coupon_applies(subscription: Subscription) -> bool:
    """Whether the subscription's coupon discounts its next invoice (once, N periods, forever)."""
    coupon = subscription.coupon
    if coupon is None:
        return False
    if coupon.duration == Coupon.Duration.FOREVER:
        return True
    periods = 1 if coupon.duration == Coupon.Duration.ONCE else coupon.duration_in_periods or 0
    return subscription.coupon_periods_used < periods


def _due_at(*, gateway: PaymentGateway, now):
    if gateway.provider == PaymentGateway.Provider.MANUAL:
        return now + timedelta(days=system_config_get(BANK_TRANSFER_DUE_DAYS_KEY, 14, int))
    return now


@dataclass(frozen=True)
class InvoiceDraft:
    """A subscription invoice before it is issued (what a preview shows): its lines, coupon,
    tax rate and document amounts."""

    lines: list[ChargeLine]
    coupon: Coupon | None
    tax_percent: Decimal
    amounts: OrderAmounts


def invoice_draft(*, subscription: Subscription, lines: list[ChargeLine], apply_coupon: bool = True) -> InvoiceDraft:
    """Price ``lines`` as the subscription's next invoice: the coupon while it lasts, the
    organization's current tax, rounded once per document (``order_amounts_compute``)."""
    coupon = subscription.coupon if apply_coupon and coupon_applies(subscription) else None
    tax_rate = tax_rate_for(organization=subscription.organization)
    tax_percent = tax_rate.rate if tax_rate is not None else Decimal("0")
    amounts = order_amounts_compute(
        line_totals=[line.amount for line in lines],
        currency=subscription.currency,
        discount_type=coupon.discount_type if coupon else None,
        discount_value=coupon.discount_value if coupon else Decimal("0"),
        tax_percent=tax_percent,
    )
    return InvoiceDraft(lines=lines, coupon=coupon, tax_percent=tax_percent, amounts=amounts)


def subscription_invoice_issue(
    *,
    subscription: Subscription,
    now,
    reason: str,
    period: tuple,
    lines: list[ChargeLine] | None = None,
    apply_coupon: bool = True,
) -> Invoice:
    """Issue the subscription's invoice for ``period``: the plan's line (unless ``lines`` are
    given), priced by ``invoice_draft``; numbered from the year's gapless sequence. The caller
    holds the subscription's lock. A zero invoice is paid at once."""
    organization = subscription.organization
    if lines is None:
        lines = [plan_line(plan=subscription.plan, interval=subscription.interval, period=period)]
    draft = invoice_draft(subscription=subscription, lines=lines, apply_coupon=apply_coupon)
    coupon, tax_percent, amounts = draft.coupon, draft.tax_percent, draft.amounts
    invoice = Invoice.objects.create(
        invoice_number=document_number_next(key="invoice", year=now.year),
        organization=organization,
        subscription=subscription,
        user=subscription.user,
        billing_reason=reason,
        status=Invoice.Status.ISSUED,
        currency=subscription.currency,
        **amounts.document_fields(),
        billing_details=invoice_billing_details(
            organization=organization,
            contact=subscription.user.get_full_name() or subscription.user.email,
            tax_rate_percent=tax_percent,
        ),
        issued_at=now,
        period_start=period[0],
        period_end=period[1],
        gateway=subscription.gateway,
        coupon=coupon,
        tax_rate_percent=tax_percent,
        due_at=_due_at(gateway=subscription.gateway, now=now),
    )
    InvoiceLine.objects.bulk_create(
        [
            InvoiceLine(
                invoice=invoice,
                kind=line.kind,
                description=line.description[:255],
                quantity=line.quantity,
                unit_price=line.unit_price,
                amount=line.amount,
                period_start=period[0],
                period_end=period[1],
                position=position,
            )
            for position, line in enumerate(lines)
        ]
    )
    if coupon is not None:
        Subscription.objects.filter(pk=subscription.pk).update(coupon_periods_used=subscription.coupon_periods_used + 1)
        subscription.coupon_periods_used += 1
    audit_record(
        action=AuditLog.Action.CREATE,
        resource=invoice,
        organization=organization,
        changes={
            "invoice_number": [None, invoice.invoice_number],
            "billing_reason": [None, reason],
            "total": [None, str(invoice.total)],
        },
    )
    emit_event("invoice.issued", organization=organization, payload=invoice_event_data(invoice))
    if invoice.total == 0:
        invoice = subscription_invoice_paid(invoice=invoice, reference="no-payment-due")
    else:
        transaction.on_commit(lambda: invoice_send_enqueue(invoice.pk))
    return invoice


def license_keep_through(*, license: License, until, source: str = "system") -> License:
    """Make the subscription's license valid at least ``until`` (a trial that ended converts to a
    paid, active license: ``license_expire`` then ``license_renew``)."""
    now = timezone.now()
    if until <= now or license.status == License.Status.REVOKED:
        return license
    if license.status == License.Status.TRIAL and license.expires_at is not None and license.expires_at <= now:
        license = license_expire(license=license, now=now)
    if license.expires_at is None or license.expires_at < until or license.status == License.Status.EXPIRED:
        license = license_renew(license=license, expires_at=until, source=source)
    return license


def _set_status(subscription: Subscription, status: str, *, event: str, **fields) -> Subscription:
    before = subscription.status
    subscription.status = status
    for name, value in fields.items():
        setattr(subscription, name, value)
    subscription.save(update_fields=["status", *fields, "updated_at"])
    audit_record(
        action=AuditLog.Action.UPDATE,
        resource=subscription,
        organization=subscription.organization,
        changes={"status": [before, status]},
    )
    emit_event(event, organization=subscription.organization, payload=subscription_event_data(subscription))
    return subscription


@transaction.atomic
def subscription_invoice_paid(
    *, invoice: Invoice, reference: str = "", actor: User | None = None, source: str = "system"
) -> Invoice:
    """Record the payment of a subscription invoice — once, however many confirmations arrive
    (the invoice row is locked; a paid invoice is returned unchanged). The license is extended
    to the invoice's period end and, if dunning suspended it, reinstated; with nothing else
    overdue the subscription is active again."""
    invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
    if invoice.status == Invoice.Status.PAID:
        return invoice
    if invoice.status != Invoice.Status.ISSUED or invoice.subscription_id is None:
        raise Conflict(f"A {invoice.status} invoice cannot be paid.", code="invoice_not_payable")
    now = timezone.now()
    invoice.status = Invoice.Status.PAID
    invoice.paid_at = now
    invoice.gateway_reference = reference or invoice.gateway_reference
    invoice.next_collection_at = None
    invoice.save(update_fields=["status", "paid_at", "gateway_reference", "next_collection_at", "updated_at"])
    audit_record(
        action=AuditLog.Action.UPDATE,
        resource=invoice,
        user=actor,
        organization=invoice.organization,
        changes={"status": [Invoice.Status.ISSUED, Invoice.Status.PAID], "reference": [None, reference]},
        source=source,
    )
    emit_event("invoice.paid", organization=invoice.organization, payload=invoice_event_data(invoice))
    subscription = (
        Subscription.objects.select_for_update(of=("self",))
        .select_related("organization", "plan", "license")
        .get(pk=invoice.subscription_id)
    )
    license = subscription.license
    if license.status == License.Status.SUSPENDED and license.status_reason.startswith(OVERDUE_REASON_PREFIX):
        license = license_reinstate(license=license, actor=actor, source=source)
    if subscription.status != Subscription.Status.CANCELLED:
        license_keep_through(license=license, until=invoice.period_end, source=source)
    overdue = subscription.invoices.filter(status=Invoice.Status.ISSUED).exists()
    if subscription.status in (Subscription.Status.INCOMPLETE, Subscription.Status.PAST_DUE) and not overdue:
        _set_status(subscription, Subscription.Status.ACTIVE, event="subscription.updated", past_due_since=None)
        license_billing_state_set(license=license, state=BillingState.CURRENT)
    return invoice


def subscription_mark_past_due(*, subscription: Subscription, now) -> Subscription:
    """A renewal's collection failed: the subscription is past due (the caller holds its lock)."""
    if subscription.status in (Subscription.Status.ACTIVE, Subscription.Status.TRIALING):
        _set_status(subscription, Subscription.Status.PAST_DUE, event="subscription.past_due", past_due_since=now)
        # Validation still answers VALID, with licensing's PAYMENT_PAST_DUE warning.
        license_billing_state_set(license=subscription.license, state=BillingState.PAST_DUE)
    return subscription
