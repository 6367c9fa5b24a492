"""Reads for billing: what customers may see of the gateways and tax rates, and orders with
everything their API representation needs in a constant number of queries."""

from django.db.models import Prefetch, QuerySet

from .models import Invoice, Order, OrderItem, PaymentGateway, PaymentMethod, TaxRate


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
    return Invoice.objects.select_related("order")
