"""Reads for billing: what customers may see of the gateways and tax rates, and orders with
everything their API representation needs in a constant number of queries."""

from datetime import timedelta
from decimal import Decimal

from django.db.models import Case, Count, DecimalField, F, Prefetch, Q, QuerySet, Sum, When
from django.db.models.functions import Coalesce, TruncMonth
from django.utils import timezone

from celaest.money import quantize_money

from .models import (
    CreditNote,
    Invoice,
    InvoiceLine,
    Order,
    OrderItem,
    PaymentGateway,
    PaymentMethod,
    Subscription,
    TaxRate,
)


def payment_gateway_visible(*, queryset: QuerySet[PaymentGateway]) -> QuerySet[PaymentGateway]:
    return queryset.filter(status=PaymentGateway.Status.ACTIVE)


def tax_rate_visible(*, queryset: QuerySet[TaxRate]) -> QuerySet[TaxRate]:
    return queryset.filter(is_active=True)


def payment_method_list() -> QuerySet[PaymentMethod]:
    return PaymentMethod.objects.select_related("gateway")


def order_list() -> QuerySet[Order]:
    """Orders with their gateway, coupon and items (each with its product) prefetched."""
    items = OrderItem.objects.select_related("product").order_by("created_at", "id")
    return Order.objects.select_related("gateway", "coupon").prefetch_related(Prefetch("items", queryset=items))


def invoice_list() -> QuerySet[Invoice]:
    lines = InvoiceLine.objects.order_by("position")
    return Invoice.objects.select_related("order").prefetch_related(Prefetch("lines", queryset=lines))


def credit_note_list() -> QuerySet[CreditNote]:
    return CreditNote.objects.select_related("invoice")


def subscription_list() -> QuerySet[Subscription]:
    return Subscription.objects.select_related("plan", "gateway", "coupon", "pending_plan")


def subscription_latest_invoice(*, subscription: Subscription) -> Invoice | None:
    return invoice_list().filter(subscription=subscription).order_by("-issued_at", "-created_at").first()


def revenue_by_month(*, months: int = 24) -> list[dict]:
    """Per calendar month and currency, over the last ``months``: orders paid, their gross total,
    tax, discounts, gateway fees, what was refunded since, and the net (gross - refunded - fees).
    Months are those of payment."""
    since = (timezone.now() - timedelta(days=31 * months)).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    refunded = Q(status=Order.Status.REFUNDED)
    rows = (
        Order.objects.filter(paid_at__gte=since, status__in=[Order.Status.PAID, Order.Status.REFUNDED])
        .annotate(month=TruncMonth("paid_at"))
        .values("month", "currency")
        .annotate(
            orders=Count("id"),
            gross=Sum("total"),
            tax=Sum("tax_total"),
            discounts=Sum("discount_total"),
            fees=Sum("gateway_fee"),
            refunded=Coalesce(Sum("total", filter=refunded), Decimal("0"), output_field=DecimalField()),
        )
        .order_by("-month", "currency")
    )
    return [{**row, "net": row["gross"] - row["refunded"] - row["fees"]} for row in rows]


def subscription_metrics(*, now=None, churn_days: int = 30) -> dict:
    """The subscription business at a glance, in a few aggregate queries: subscriptions by
    status, monthly recurring revenue per currency (the plans' list prices of the paying ones,
    active and past due, a yearly price counted as a twelfth), and churn over ``churn_days``
    (cancelled in the window over paying now plus cancelled in the window)."""
    now = now or timezone.now()
    paying = Subscription.objects.filter(status__in=[Subscription.Status.ACTIVE, Subscription.Status.PAST_DUE])
    monthly = Case(
        When(interval=Subscription.Interval.YEAR, then=F("plan__price_yearly") / Decimal("12")),
        default=F("plan__price_monthly"),
        output_field=DecimalField(max_digits=20, decimal_places=6),
    )
    mrr = {
        row["currency"]: quantize_money(row["mrr"], row["currency"])
        for row in paying.values("currency").annotate(mrr=Sum(monthly)).order_by("currency")
    }
    by_status = dict(Subscription.objects.values_list("status").annotate(count=Count("id")).order_by("status"))
    churned = Subscription.objects.filter(
        status=Subscription.Status.CANCELLED, cancelled_at__gt=now - timedelta(days=churn_days), cancelled_at__lte=now
    ).count()
    base = by_status.get(Subscription.Status.ACTIVE, 0) + by_status.get(Subscription.Status.PAST_DUE, 0) + churned
    churn = (Decimal(churned) * 100 / base).quantize(Decimal("0.1")) if base else Decimal("0")
    return {"by_status": by_status, "mrr": mrr, "churned": churned, "churn_percent": churn, "churn_days": churn_days}
