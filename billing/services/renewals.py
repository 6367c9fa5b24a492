"""Renewal and collection: at each period boundary the beat job issues a subscription's renewal
invoice exactly once, then collects it through the subscription's gateway (Stripe: an
off-session charge of the saved method; bank transfer: awaited until the due date).

Renewals go in set-based batches (``subscriptions_renew``): a batch's subscriptions are locked
with ``SKIP LOCKED`` and re-read as due, so concurrent runs split the work and a subscription
renewed by one is no longer due for the other; the invoice's unique ``(subscription,
period_start)`` for renewals is the last line of defence. Each collection attempt is claimed
with one conditional UPDATE of the invoice's attempt counter, so an attempt is made once and
Stripe's idempotency key (invoice + attempt) makes a retried call harmless.
"""

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from audit.models import AuditLog
from audit.services import audit_record
from billing.gateways import Collection, gateway_backend
from billing.models import Invoice, InvoiceLine, Subscription
from billing.periods import organization_zone, period_bounds
from celaest.bulk import rows_update
from celaest.celery import app as celery_app
from celaest.errors import InvalidInput
from licensing.models import SubscriptionPlan
from licensing.services import license_change_plan, licenses_keep_valid
from settings_app.events import emit_event, emit_events
from settings_app.runtime import system_config_get

from .checkout import tax_rates_for
from .event_data import invoice_event_data, subscription_event_data
from .notices import payment_failed_notice_enqueue
from .numbering import document_numbers_reserve
from .subscription_invoices import (
    InvoiceDraft,
    grace_period,
    invoice_draft,
    invoice_due_at,
    plan_line,
    plans_terms,
    subscription_invoice_build,
    subscription_invoice_paid,
    subscription_invoices_issued,
    subscription_mark_past_due,
    tax_percent_of,
    usage_lines,
    usage_months_unbilled,
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
class RenewalInputs:
    """What pricing renewals reads, loaded at once for a batch (or one subscription): each
    license's usage months not invoiced yet, each plan's billing terms, each organization's tax."""

    usage_months: dict
    terms: dict
    tax_percents: dict


def renewal_inputs_load(subscriptions: list[Subscription]) -> RenewalInputs:
    """Three queries, however many subscriptions."""
    tax_rates = tax_rates_for(organizations={s.organization_id: s.organization for s in subscriptions}.values())
    return RenewalInputs(
        usage_months=usage_months_unbilled(subscriptions=subscriptions),
        terms=plans_terms(plans={subscription.plan_id: subscription.plan for subscription in subscriptions}.values()),
        tax_percents={organization_id: tax_percent_of(rate) for organization_id, rate in tax_rates.items()},
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


def next_renewal(subscription: Subscription, inputs: RenewalInputs) -> NextRenewal:
    plan = subscription.pending_plan or subscription.plan
    interval = subscription.pending_interval or subscription.interval
    anchor, index = subscription.billing_anchor, subscription.periods_billed
    if interval != subscription.interval:
        anchor, index = subscription.current_period_end, 0
    zone = organization_zone(subscription.organization)
    period = period_bounds(anchor=anchor, index=index, interval=interval, zone=zone)
    overage, billed_through = usage_lines(
        subscription=subscription,
        before=period[0].date(),
        months=inputs.usage_months[subscription.license_id],
        terms=inputs.terms[subscription.plan_id],
    )
    lines = [plan_line(plan=plan, interval=interval, period=period), *overage]
    return NextRenewal(plan, interval, anchor, index, period, lines, billed_through)


def subscription_upcoming_invoice(subscription: Subscription) -> tuple[NextRenewal, InvoiceDraft]:
    """The next renewal invoice as it would be issued now (nothing is written): what
    ``subscriptions_renew`` would bill, priced the same way."""
    inputs = renewal_inputs_load([subscription])
    renewal = next_renewal(subscription, inputs)
    tax_percent = inputs.tax_percents[subscription.organization_id]
    return renewal, invoice_draft(subscription=subscription, lines=renewal.lines, tax_percent=tax_percent)


def _advance(subscription: Subscription, renewal: NextRenewal, *, now) -> None:
    """Move the subscription (in memory) to the period its renewal bills; a trial converts to paid."""
    subscription.plan, subscription.currency = renewal.plan, renewal.plan.currency
    subscription.interval, subscription.billing_anchor = renewal.interval, renewal.anchor
    subscription.pending_plan, subscription.pending_interval = None, ""
    subscription.current_period_start, subscription.current_period_end = renewal.period
    subscription.periods_billed = renewal.index + 1
    subscription.usage_billed_through = renewal.usage_billed_through
    if subscription.status == Subscription.Status.TRIALING:
        subscription.status = Subscription.Status.ACTIVE
    subscription.updated_at = now


#: what a renewal changes on the subscription (``_advance``)
_ADVANCED_FIELDS = (
    "plan",
    "currency",
    "interval",
    "billing_anchor",
    "pending_plan",
    "pending_interval",
    "current_period_start",
    "current_period_end",
    "periods_billed",
    "usage_billed_through",
    "status",
    "updated_at",
)


@transaction.atomic
def subscriptions_renew(*, subscription_ids: list, now) -> list[Invoice]:
    """Renew, in one transaction, those of ``subscription_ids`` whose period has ended: issue each
    one's renewal invoice and move it to its next period (a cancellation at the period end ends
    it instead). Set-based, a handful of statements however many there are: the subscriptions
    locked at once, skipping those another run holds (concurrent runs split the work and never
    issue twice; the invoice's unique ``(subscription, period_start)`` for renewals is the last
    line of defence), the usage, terms and taxes read at once, one block of gapless invoice
    numbers, invoices and lines inserted in bulk, the subscriptions and licenses updated in bulk,
    audit rows and events written in bulk. Each invoice is priced as a preview prices it
    (``next_renewal``, ``invoice_draft``). Returns the invoices issued."""
    locked = list(
        Subscription.objects.select_for_update(of=("self",), skip_locked=True)
        .select_related("organization", "user", "license")
        .prefetch_related("plan", "pending_plan", "gateway", "coupon")  # a few rows, shared by the batch
        .filter(pk__in=subscription_ids, status__in=RENEWING, current_period_end__lte=now)
        .order_by("pk")
    )
    renewing = []
    for subscription in locked:
        if subscription.cancel_at_period_end:
            _cancel_at_period_end(subscription)
        else:
            renewing.append(subscription)
    if not renewing:
        return []
    inputs = renewal_inputs_load(renewing)
    renewals = [next_renewal(subscription, inputs) for subscription in renewing]
    for subscription, renewal in zip(renewing, renewals, strict=True):
        _advance(subscription, renewal, now=now)
    rows_update(Subscription, renewing, _ADVANCED_FIELDS)
    for subscription in renewing:
        if subscription.license.plan_id != subscription.plan_id:  # a change at the period end
            license_change_plan(license=subscription.license, plan=subscription.plan)
    drafts = [
        invoice_draft(
            subscription=subscription,
            lines=renewal.lines,
            tax_percent=inputs.tax_percents[subscription.organization_id],
        )
        for subscription, renewal in zip(renewing, renewals, strict=True)
    ]
    # Valid while the money is awaited, until dunning's grace period ends (a zero invoice is paid
    # at once, which extends its license to the period's end).
    grace = grace_period()
    due_at = {gateway.pk: invoice_due_at(gateway=gateway, now=now) for gateway in {s.gateway for s in renewing}}
    licenses_keep_valid(
        until_by_license={
            subscription.license_id: due_at[subscription.gateway_id] + grace
            for subscription, draft in zip(renewing, drafts, strict=True)
            if draft.amounts.total
        }
    )
    emit_events(
        "subscription.renewed",
        events=[(subscription.organization_id, subscription_event_data(subscription)) for subscription in renewing],
    )
    # Last, the year's invoice numbers: their sequence stays locked until this transaction ends,
    # and a concurrent run waits on it only for the invoices' inserts.
    numbers = document_numbers_reserve(key="invoice", year=now.year, count=len(renewing))
    built = [
        subscription_invoice_build(
            subscription=subscription,
            number=number,
            now=now,
            reason=Invoice.Reason.SUBSCRIPTION_CYCLE,
            period=renewal.period,
            draft=draft,
            due_at=due_at[subscription.gateway_id],
        )
        for subscription, renewal, draft, number in zip(renewing, renewals, drafts, numbers, strict=True)
    ]
    for invoice, _ in built:
        if not gateway_backend(invoice.gateway).collection_is_awaited:
            invoice.next_collection_at = now  # a charge is due: queued after commit, else dunning's
    Invoice.objects.bulk_create([invoice for invoice, _ in built], batch_size=1000)
    InvoiceLine.objects.bulk_create([line for _, lines in built for line in lines], batch_size=2000)
    invoices = subscription_invoices_issued(
        issued=[(subscription, invoice) for subscription, (invoice, _) in zip(renewing, built, strict=True)]
    )
    return invoices


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


#: subscriptions renewed per transaction: big enough that a batch's few statements carry
#: thousands of rows, small enough that its locks are held for about a second
RENEWAL_BATCH_SIZE = 2000


def subscriptions_renew_due(
    *, now=None, limit: int | None = None, batch_size: int = RENEWAL_BATCH_SIZE, workers: int = 1
) -> int:
    """The beat job: renew every subscription whose period has ended (up to ``limit``), a batch of
    ``batch_size`` per transaction (``subscriptions_renew``), and after each batch commits make
    its invoices' first collection attempts (``invoices_collect``). Each subscription due when
    the run starts is renewed once by this run. ``workers`` threads, each with its own database
    connection, renew batches side by side (one's Python runs while another waits on the
    database; ``SKIP LOCKED`` keeps them apart). Returns how many invoices were issued."""
    now = now or timezone.now()
    due = list(
        Subscription.objects.filter(status__in=RENEWING, current_period_end__lte=now)
        .order_by("current_period_end", "pk")
        .values_list("pk", flat=True)[:limit]
    )
    batches = [due[start : start + batch_size] for start in range(0, len(due), batch_size)]
    if workers == 1 or len(batches) == 1:
        return sum(_renew_and_collect(batch, now=now) for batch in batches)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return sum(pool.map(lambda batch: _renew_and_collect(batch, now=now, own_connection=True), batches))


def subscriptions_renew_dispatch(*, now=None, batch_size: int = RENEWAL_BATCH_SIZE) -> int:
    """The beat job: hand every subscription whose period has ended to the workers, a batch of
    ``batch_size`` per message (``billing.renew_subscription_batch``), so that all the worker's
    processes renew side by side (one process renews about 700 a second: 100,000 take 144 s
    alone, 104 s on two). A batch renews only what is still due when it runs, and concurrent
    batches skip each other's rows, so a dispatch made twice, or a message delivered twice,
    issues nothing twice. Returns how many batches were sent."""
    now = now or timezone.now()
    due = [
        str(pk)
        for pk in Subscription.objects.filter(status__in=RENEWING, current_period_end__lte=now)
        .order_by("current_period_end", "pk")
        .values_list("pk", flat=True)
    ]
    batches = [due[start : start + batch_size] for start in range(0, len(due), batch_size)]
    for batch in batches:
        # Named, not imported: billing.tasks imports this module.
        celery_app.tasks["billing.renew_subscription_batch"].delay(batch, now.isoformat())
    return len(batches)


def subscriptions_renew_batch(*, subscription_ids: list, now) -> int:
    """One batch of the beat job's (``subscriptions_renew``), its invoices' first collection
    attempts made once it commits. Returns how many invoices were issued."""
    return _renew_and_collect(subscription_ids, now=now)


def _renew_and_collect(subscription_ids: list, *, now, own_connection: bool = False) -> int:
    try:
        invoices = subscriptions_renew(subscription_ids=subscription_ids, now=now)
        invoices_collect(invoices=[invoice for invoice in invoices if invoice.status == Invoice.Status.ISSUED])
        return len(invoices)
    finally:
        if own_connection:
            connection.close()


def invoices_collect(*, invoices: list[Invoice]) -> dict[str, int]:
    """Make the next collection attempt of issued invoices, outside any transaction: those whose
    gateway only awaits the money (bank transfer: ``pending``) claimed in one UPDATE; the others
    (a card charged off-session: a call to the gateway, up to a second each) queued, one task per
    invoice (``billing.collect_invoice``), for the workers to make side by side. Returns how many
    were ``pending`` and how many ``queued``."""
    outcomes = {"pending": 0, "queued": 0}
    awaited = {invoice.pk: invoice for invoice in invoices if gateway_backend(invoice.gateway).collection_is_awaited}
    for attempts in {invoice.collection_attempts for invoice in awaited.values()}:
        outcomes["pending"] += Invoice.objects.filter(
            pk__in=[pk for pk, invoice in awaited.items() if invoice.collection_attempts == attempts],
            status=Invoice.Status.ISSUED,
            collection_attempts=attempts,
        ).update(collection_attempts=attempts + 1, next_collection_at=None, updated_at=timezone.now())
    for invoice in invoices:
        if invoice.pk not in awaited:
            invoice_collect_enqueue(invoice.pk)
            outcomes["queued"] += 1
    return outcomes


def invoice_collect_enqueue(invoice_id) -> None:
    """Queue the invoice's next collection attempt (``invoice_collect`` in a worker). The task is
    named, not imported: ``billing.tasks`` imports these services."""
    celery_app.signature("billing.collect_invoice", args=[str(invoice_id)]).delay()


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
