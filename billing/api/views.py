"""Billing endpoints: the gateway and tax catalogue, coupons (staff), and an organization's
payment methods, orders and invoices."""

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins
from rest_framework.decorators import action
from rest_framework.response import Response

from billing import selectors, services
from billing.filters import (
    CouponFilterSet,
    InvoiceFilterSet,
    OrderFilterSet,
    PaymentGatewayFilterSet,
    PaymentMethodFilterSet,
    TaxRateFilterSet,
)
from billing.models import Coupon, PaymentGateway, TaxRate
from celaest.api import permissions as perms
from celaest.api.viewsets import CatalogViewSet, CrudMixin, ReadOnlyMixin, StaffViewSet, TenantViewSet

from .serializers import (
    CouponSerializer,
    InvoiceSerializer,
    OrderSerializer,
    PaymentGatewaySerializer,
    PaymentMethodSerializer,
    TaxRateSerializer,
)


@extend_schema_view(
    list=extend_schema(summary="List payment gateways"),
    retrieve=extend_schema(summary="Get a payment gateway"),
    create=extend_schema(summary="Create a payment gateway (staff)"),
    update=extend_schema(summary="Replace a payment gateway (staff)"),
    partial_update=extend_schema(summary="Update a payment gateway (staff)"),
    destroy=extend_schema(summary="Delete an unused payment gateway (staff)"),
)
class PaymentGatewayViewSet(CatalogViewSet, CrudMixin):
    """Customers see active gateways. ``config`` is edited in the admin only, never served."""

    serializer_class = PaymentGatewaySerializer
    scope_resource = "payment-gateways"
    filterset_class = PaymentGatewayFilterSet
    search_fields = ["name", "code"]
    ordering_fields = ["name", "code", "fee_percentage"]
    ordering = ["name"]

    def scoped_queryset(self) -> QuerySet:
        return PaymentGateway.objects.all()

    def visible_to_customers(self, queryset: QuerySet) -> QuerySet:
        return selectors.payment_gateway_visible(queryset=queryset)

    def perform_destroy(self, instance):
        services.payment_gateway_delete(gateway=instance)


@extend_schema_view(
    list=extend_schema(summary="List tax rates"),
    retrieve=extend_schema(summary="Get a tax rate"),
    create=extend_schema(summary="Create a tax rate (staff)"),
    update=extend_schema(summary="Replace a tax rate (staff)"),
    partial_update=extend_schema(summary="Update a tax rate (staff)"),
    destroy=extend_schema(summary="Delete an unused tax rate (staff)"),
)
class TaxRateViewSet(CatalogViewSet, CrudMixin):
    """Customers see active tax rates."""

    serializer_class = TaxRateSerializer
    scope_resource = "tax-rates"
    filterset_class = TaxRateFilterSet
    search_fields = ["name", "code", "country_code"]
    ordering_fields = ["country_code", "name", "rate"]
    ordering = ["country_code", "name"]

    def scoped_queryset(self) -> QuerySet:
        return TaxRate.objects.all()

    def visible_to_customers(self, queryset: QuerySet) -> QuerySet:
        return selectors.tax_rate_visible(queryset=queryset)

    def perform_destroy(self, instance):
        services.tax_rate_delete(tax_rate=instance)


@extend_schema_view(
    list=extend_schema(summary="List coupons (staff)"),
    retrieve=extend_schema(summary="Get a coupon (staff)"),
    create=extend_schema(summary="Create a coupon (staff)"),
    update=extend_schema(summary="Replace a coupon (staff)"),
    partial_update=extend_schema(summary="Update a coupon (staff)"),
    destroy=extend_schema(summary="Delete an unused coupon (staff)"),
)
class CouponViewSet(StaffViewSet, CrudMixin):
    serializer_class = CouponSerializer
    scope_resource = "coupons"
    filterset_class = CouponFilterSet
    search_fields = ["code", "description"]
    ordering_fields = ["code", "valid_from", "valid_until", "times_redeemed"]
    ordering = ["-valid_from"]

    def scoped_queryset(self) -> QuerySet:
        return Coupon.objects.all()

    def perform_create(self, serializer):
        serializer.instance = services.coupon_create(**serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = services.coupon_update(coupon=serializer.instance, **serializer.validated_data)

    def perform_destroy(self, instance):
        services.coupon_delete(coupon=instance)


@extend_schema_view(
    list=extend_schema(summary="List my organization's payment methods"),
    retrieve=extend_schema(summary="Get a payment method"),
    destroy=extend_schema(summary="Remove a payment method (owners)"),
    set_default=extend_schema(
        summary="Make a payment method the organization's default (owners)",
        request=None,
        responses=PaymentMethodSerializer,
    ),
)
class PaymentMethodViewSet(TenantViewSet, ReadOnlyMixin, mixins.DestroyModelMixin):
    """Billing data: owners and admins read it, owners change it. Methods are added through a
    payment gateway's flow, not posted here."""

    serializer_class = PaymentMethodSerializer
    scope_resource = "payment-methods"
    read_roles = perms.MANAGER_ROLES
    write_roles = perms.BILLING_ROLES
    filterset_class = PaymentMethodFilterSet
    ordering_fields = ["created_at", "is_default"]
    ordering = ["-is_default", "-created_at"]

    def scoped_queryset(self) -> QuerySet:
        return selectors.payment_method_list()

    @action(detail=True, methods=["post"], url_path="set-default")
    def set_default(self, request, *args, **kwargs):
        payment_method = services.payment_method_set_default(payment_method=self.get_object())
        return Response(self.get_serializer(payment_method).data)

    def perform_destroy(self, instance):
        services.payment_method_delete(payment_method=instance)


@extend_schema_view(
    list=extend_schema(summary="List my organization's orders"),
    retrieve=extend_schema(summary="Get an order with its items"),
)
class OrderViewSet(TenantViewSet, ReadOnlyMixin):
    serializer_class = OrderSerializer
    scope_resource = "orders"
    filterset_class = OrderFilterSet
    search_fields = ["order_number"]
    ordering_fields = ["created_at", "total", "paid_at"]
    ordering = ["-created_at"]

    def scoped_queryset(self) -> QuerySet:
        return selectors.order_list()


@extend_schema_view(
    list=extend_schema(summary="List my organization's invoices"),
    retrieve=extend_schema(summary="Get an invoice"),
)
class InvoiceViewSet(TenantViewSet, ReadOnlyMixin):
    serializer_class = InvoiceSerializer
    scope_resource = "invoices"
    filterset_class = InvoiceFilterSet
    search_fields = ["invoice_number", "order__order_number"]
    ordering_fields = ["created_at", "issued_at", "total"]
    ordering = ["-created_at"]

    def scoped_queryset(self) -> QuerySet:
        return selectors.invoice_list()
