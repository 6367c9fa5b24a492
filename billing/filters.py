"""Filtersets for billing endpoints.

Foreign keys are filtered by id (``UUIDFilter``): no lookup query per request, and an id the
caller may not see simply matches nothing.
"""

import django_filters

from celaest.api.filters import ApiFilterSet

from .models import Coupon, CreditNote, Invoice, Order, PaymentGateway, PaymentMethod, Subscription, TaxRate


class PaymentGatewayFilterSet(ApiFilterSet):
    class Meta:
        model = PaymentGateway
        fields = {"code": ["exact"], "provider": ["exact"], "status": ["exact"]}


class TaxRateFilterSet(ApiFilterSet):
    class Meta:
        model = TaxRate
        fields = {"code": ["exact"], "country_code": ["exact"], "region": ["exact"], "is_active": ["exact"]}


class CouponFilterSet(ApiFilterSet):
    class Meta:
        model = Coupon
        fields = {
            "code": ["exact", "icontains"],
            "discount_type": ["exact"],
            "is_active": ["exact"],
            "valid_from": ["gte", "lte"],
            "valid_until": ["gte", "lte", "isnull"],
        }


class PaymentMethodFilterSet(ApiFilterSet):
    user = django_filters.UUIDFilter(field_name="user_id")

    class Meta:
        model = PaymentMethod
        fields = {"type": ["exact"], "card_brand": ["exact"], "is_default": ["exact"]}


class OrderFilterSet(ApiFilterSet):
    user = django_filters.UUIDFilter(field_name="user_id")
    status = django_filters.MultipleChoiceFilter(choices=Order.Status.choices)
    created_at = django_filters.IsoDateTimeFromToRangeFilter()

    class Meta:
        model = Order
        fields = ["order_number", "status", "user", "currency", "created_at"]


class InvoiceFilterSet(ApiFilterSet):
    order = django_filters.UUIDFilter(field_name="order_id")
    subscription = django_filters.UUIDFilter(field_name="subscription_id")
    user = django_filters.UUIDFilter(field_name="user_id")
    status = django_filters.MultipleChoiceFilter(choices=Invoice.Status.choices)
    issued_at = django_filters.IsoDateTimeFromToRangeFilter()

    class Meta:
        model = Invoice
        fields = ["invoice_number", "status", "order", "subscription", "billing_reason", "user", "issued_at"]


class SubscriptionFilterSet(ApiFilterSet):
    status = django_filters.MultipleChoiceFilter(choices=Subscription.Status.choices)
    license = django_filters.UUIDFilter(field_name="license_id")

    class Meta:
        model = Subscription
        fields = ["status", "interval", "license"]


class CreditNoteFilterSet(ApiFilterSet):
    invoice = django_filters.UUIDFilter(field_name="invoice_id")
    issued_at = django_filters.IsoDateTimeFromToRangeFilter()

    class Meta:
        model = CreditNote
        fields = ["credit_note_number", "kind", "invoice", "issued_at"]
