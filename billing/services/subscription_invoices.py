"""A subscription's invoices and what they do to it: issued for a period (the plan, the AI usage
beyond the plan of the months that closed, the coupon while it lasts, the organization's tax),
paid (the license extended to the period's end, reinstated if dunning suspended it), overdue
(the subscription past due).

While an invoice waits for its money the license stays valid until the invoice's due date plus
the grace period (``billing.grace_days``); dunning suspends it then.
"""

from dataclasses import dataclass
from datetime import UTC, timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from audit.models import AuditLog
from audit.services import audit_record, audit_record_many
from billing.models import Coupon, Invoice, InvoiceLine, PaymentGateway, PlanBillingTerms, Subscription, TaxRate
from billing.pricing import ChargeLine, OrderAmounts, order_amounts_compute, overage_lines
from celaest.errors import Conflict
from identity.models import User
from licensing.models import BillingState, License, LicenseUsageLog, SubscriptionPlan
from licensing.services import (
    license_billing_state_set,
    license_extension,
    license_reinstate,
    license_renew,
    license_trial_convert,
)
from settings_app.events import emit_event, emit_events
from settings_app.runtime import system_config_get

from .checkout import tax_rate_for
from .event_data import invoice_event_data, subscription_event_data
from .invoices import invoice_billing_details, invoices_send_enqueue
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
    return plans_terms(plans=[plan])[plan.pk]


def plans_terms(*, plans) -> dict:
    """``plan_terms`` of each plan (by id), in one query."""
    plans = {plan.pk: plan for plan in plans}
    stored = {terms.plan_id: terms for terms in PlanBillingTerms.objects.filter(plan_id__in=list(plans))}
    return {pk: stored.get(pk) or PlanBillingTerms(plan=plan) for pk, plan in plans.items()}


def plan_price(*, plan: SubscriptionPlan, interval: str) -> Decimal:
    return plan.price_yearly if interval == Subscription.Interval.YEAR else plan.price_monthly


def plan_line(*, plan: SubscriptionPlan, interval: str, period: tuple) -> ChargeLine:
    price = plan_price(plan=plan, interval=interval)
    label = "yearly" if interval == Subscription.Interval.YEAR else "monthly"
    description = f"{plan.name} ({label}) {period[0]:%Y-%m-%d} – {period[1]:%Y-%m-%d}"
    return ChargeLine(InvoiceLine.Kind.PLAN, description[:255], Decimal(1), price, price)


def usage_months_unbilled(*, subscriptions) -> dict:
    """The usage months (``license_usage_log``) of each subscription's license (by license id)
    not invoiced yet, oldest first, in one query: those after the last one billed, or for a first
    bill those that ended once the paid subscription had begun (a trial's months are free).
    Read against the subscriptions as stored."""
    stored = "license__subscription__"
    paid_from = TruncDate(Coalesce(f"{stored}trial_end", f"{stored}created_at"), tzinfo=UTC)
    months = LicenseUsageLog.objects.filter(license_id__in=[subscription.license_id for subscription in subscriptions])
    months = months.filter(
        Q(**{f"{stored}usage_billed_through__isnull": False}, period_end__gt=F(f"{stored}usage_billed_through"))
        | Q(**{f"{stored}usage_billed_through__isnull": True}, period_end__gte=paid_from)
    )
    unbilled: dict = {subscription.license_id: [] for subscription in subscriptions}
    for month in months.order_by("license_id", "period_start"):
        unbilled[month.license_id].append(month)
    return unbilled


def usage_lines(*, subscription: Subscription, before, months: list, terms: PlanBillingTerms) -> tuple[list, object]:
    """The overage of the unbilled usage ``months`` (``usage_months_unbilled``) that closed before
    the date ``before`` (however the periods were re-anchored by a pause or a new interval), priced
    by the subscription's plan's ``terms``, and the end of the last such month."""
    months = [month for month in months if month.period_end < before]
    if not months:
        return [], subscription.usage_billed_through
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


def invoice_due_at(*, gateway: PaymentGateway, now):
    """When an invoice issued ``now`` is due: at once by card, in ``billing.bank_transfer_due_days`` by transfer."""
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


def tax_percent_of(tax_rate: TaxRate | None) -> Decimal:
    return tax_rate.rate if tax_rate is not None else Decimal("0")


def invoice_draft(
    *,
    subscription: Subscription,
    lines: list[ChargeLine],
    apply_coupon: bool = True,
    tax_percent: Decimal | None = None,
) -> InvoiceDraft:
    """Price ``lines`` as the subscription's next invoice: the coupon while it lasts, the
    organization's current tax (``tax_percent`` when the caller looked it up already: a renewal
    batch), rounded once per document (``order_amounts_compute``). The one pricing of a
    subscription's invoice: previews, plan changes and renewals alike."""
    coupon = subscription.coupon if apply_coupon and coupon_applies(subscription) else None
    if tax_percent is None:
        tax_percent = tax_percent_of(tax_rate_for(organization=subscription.organization))
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
    if lines is None:
        lines = [plan_line(plan=subscription.plan, interval=subscription.interval, period=period)]
    draft = invoice_draft(subscription=subscription, lines=lines, apply_coupon=apply_coupon)
    invoice, invoice_lines = subscription_invoice_build(
        subscription=subscription,
        number=document_number_next(key="invoice", year=now.year),
        now=now,
        reason=reason,
        period=period,
        draft=draft,
    )
    invoice.save(force_insert=True)
    InvoiceLine.objects.bulk_create(invoice_lines)
    (invoice,) = subscription_invoices_issued(issued=[(subscription, invoice)])
    return invoice


def subscription_invoice_build(
    *, subscription: Subscription, number: str, now, reason: str, period: tuple, draft: InvoiceDraft, due_at=None
) -> tuple[Invoice, list[InvoiceLine]]:
    """The subscription's invoice numbered ``number`` for ``period`` as ``draft`` prices it, and
    its lines: not stored yet (one, or a renewal batch's in bulk). ``due_at`` is the gateway's
    ``invoice_due_at`` (a batch reads it once per gateway)."""
    organization = subscription.organization
    invoice = Invoice(
        invoice_number=number,
        organization=organization,
        subscription=subscription,
        user=subscription.user,
        billing_reason=reason,
        status=Invoice.Status.ISSUED,
        currency=subscription.currency,
        **draft.amounts.document_fields(),
        billing_details=invoice_billing_details(
            organization=organization,
            contact=subscription.user.get_full_name() or subscription.user.email,
            tax_rate_percent=draft.tax_percent,
        ),
        issued_at=now,
        period_start=period[0],
        period_end=period[1],
        gateway=subscription.gateway,
        coupon=draft.coupon,
        tax_rate_percent=draft.tax_percent,
        due_at=due_at or invoice_due_at(gateway=subscription.gateway, now=now),
    )
    lines = [
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
        for position, line in enumerate(draft.lines)
    ]
    return invoice, lines


def subscription_invoices_issued(*, issued: list[tuple[Subscription, Invoice]]) -> list[Invoice]:
    """What storing subscription invoices does, for one or a batch (the caller holds the
    subscriptions' locks): a coupon's use counted, the invoices audited and announced
    (``invoice.issued``), a zero invoice paid at once, the others e-mailed after commit. Returns
    the invoices as they now are."""
    discounted = [subscription for subscription, invoice in issued if invoice.coupon_id is not None]
    if discounted:
        Subscription.objects.filter(pk__in=[subscription.pk for subscription in discounted]).update(
            coupon_periods_used=F("coupon_periods_used") + 1
        )
        for subscription in discounted:
            subscription.coupon_periods_used += 1
    audit_record_many(
        records=(
            {
                "action": AuditLog.Action.CREATE,
                "resource": invoice,
                "organization": subscription.organization,
                "changes": {
                    "invoice_number": [None, invoice.invoice_number],
                    "billing_reason": [None, invoice.billing_reason],
                    "total": [None, str(invoice.total)],
                },
            }
            for subscription, invoice in issued
        )
    )
    emit_events(
        "invoice.issued", events=[(invoice.organization_id, invoice_event_data(invoice)) for _, invoice in issued]
    )
    invoices, to_send = [], []
    for _, invoice in issued:
        if invoice.total == 0:
            invoice = subscription_invoice_paid(invoice=invoice, reference="no-payment-due")
        else:
            to_send.append(invoice.pk)
        invoices.append(invoice)
    if to_send:
        transaction.on_commit(lambda: invoices_send_enqueue(to_send))
    return invoices


def license_keep_through(*, license: License, until, source: str = "system") -> License:
    """Make the subscription's license valid at least until ``until`` (``license_extension``: a
    trial that ended converts to a paid, active license; an earlier expiry is extended)."""
    extension = license_extension(license=license, until=until, now=timezone.now())
    if extension == "trial_converted":
        return license_trial_convert(license=license, expires_at=until, source=source)
    if extension == "renewed":
        return license_renew(license=license, expires_at=until, source=source)
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
