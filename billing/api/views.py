"""Billing endpoints: the gateway and tax catalogue, coupons (staff), and an organization's
payment methods, orders and invoices."""

from django.db.models import QuerySet
from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from billing import selectors
from billing.documents import credit_note_pdf, invoice_html, invoice_pdf
from billing.filters import (
    CouponFilterSet,
    CreditNoteFilterSet,
    InvoiceFilterSet,
    OrderFilterSet,
    PaymentGatewayFilterSet,
    PaymentMethodFilterSet,
    SubscriptionFilterSet,
    TaxRateFilterSet,
)
from billing.gateways import stripe_event_construct
from billing.models import Coupon, Order, PaymentGateway, PaymentMethod, TaxRate
from billing.services.catalogue import (
    coupon_create,
    coupon_delete,
    coupon_update,
    payment_gateway_delete,
    tax_rate_delete,
)
from billing.services.checkout import order_checkout, order_payment_start
from billing.services.payment_methods import payment_method_delete, payment_method_set_default
from billing.services.payments import order_cancel
from billing.services.plan_changes import (
    plan_change_quote,
    subscription_cancel,
    subscription_change_plan,
    subscription_pause,
    subscription_resume,
)
from billing.services.renewals import invoice_collect, subscription_pay_now, subscription_upcoming_invoice
from billing.services.stripe_events import stripe_event_handle
from billing.services.subscriptions import subscription_create
from celaest.api import permissions as perms
from celaest.api.schema import crud_schema
from celaest.api.viewsets import CatalogViewSet, CrudMixin, ReadOnlyMixin, StaffViewSet, TenantViewSet
from celaest.errors import Conflict, InvalidInput
from celaest.net import client_ip

from .serializers import (
    CouponSerializer,
    CreditNoteSerializer,
    InvoiceSerializer,
    OrderCancelSerializer,
    OrderCheckoutSerializer,
    OrderCreateSerializer,
    OrderSerializer,
    PaymentGatewaySerializer,
    PaymentMethodSerializer,
    PlanChangePreviewSerializer,
    PlanChangeSerializer,
    StripeWebhookResultSerializer,
    SubscriptionCancelSerializer,
    SubscriptionChangeResultSerializer,
    SubscriptionCheckoutSerializer,
    SubscriptionCreateSerializer,
    SubscriptionPayResultSerializer,
    SubscriptionPaySerializer,
    SubscriptionSerializer,
    TaxRateSerializer,
    UpcomingInvoiceSerializer,
)

IDEM_HELP = "Any unique string per checkout attempt (e.g. a UUID); retries reuse it."


@extend_schema_view(
    **crud_schema("a payment gateway", "payment gateways", destroy="Delete an unused payment gateway (staff)")
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
        payment_gateway_delete(gateway=instance)


@extend_schema_view(**crud_schema("a tax rate", "tax rates", destroy="Delete an unused tax rate (staff)"))
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
        tax_rate_delete(tax_rate=instance)


@extend_schema_view(**crud_schema("a coupon", "coupons", staff_reads=True, destroy="Delete an unused coupon (staff)"))
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
        serializer.instance = coupon_create(**serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = coupon_update(coupon=serializer.instance, **serializer.validated_data)

    def perform_destroy(self, instance):
        coupon_delete(coupon=instance)


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
        payment_method = payment_method_set_default(payment_method=self.get_object())
        return Response(self.get_serializer(payment_method).data)

    def perform_destroy(self, instance):
        payment_method_delete(payment_method=instance)


def _payment_body(order, session) -> dict | None:
    if session is None:
        return None
    return {
        "gateway": order.gateway.code,
        "reference": session.reference,
        "client_secret": session.client_secret,
        "instructions": session.instructions,
    }


@extend_schema_view(
    list=extend_schema(summary="List my organization's orders"),
    retrieve=extend_schema(summary="Get an order with its items"),
    create=extend_schema(
        summary="Place an order (checkout)",
        description=(
            "Prices are computed on the server: subtotal, coupon discount, tax of the organization's "
            "country on the discounted amount, total. Send an `Idempotency-Key` header to retry safely: "
            "the same key and body return the same order (200), the same key with another body is a 409."
        ),
        parameters=[
            OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False, description=IDEM_HELP)
        ],
        request=OrderCreateSerializer,
        responses={201: OrderCheckoutSerializer, 200: OrderCheckoutSerializer},
    ),
    pay=extend_schema(
        summary="Start or resume paying a pending order", request=None, responses=OrderCheckoutSerializer
    ),
    cancel=extend_schema(summary="Cancel a pending order", request=OrderCancelSerializer, responses=OrderSerializer),
)
class OrderViewSet(TenantViewSet, ReadOnlyMixin):
    """Orders are placed by owners and admins; every member may read them."""

    serializer_class = OrderSerializer
    scope_resource = "orders"
    write_roles = perms.MANAGER_ROLES
    filterset_class = OrderFilterSet
    search_fields = ["order_number"]
    ordering_fields = ["created_at", "total", "paid_at"]
    ordering = ["-created_at"]

    def scoped_queryset(self) -> QuerySet:
        return selectors.order_list()

    def _checkout_response(self, order, *, status_code: int) -> Response:
        session = None
        if order.status == Order.Status.PENDING:
            session = order_payment_start(order=order)
        order = self.scoped_queryset().get(pk=order.pk)
        body = OrderCheckoutSerializer(order).data
        body["payment"] = _payment_body(order, session)
        return Response(body, status=status_code)

    def create(self, request, *args, **kwargs):
        key = request.headers.get("Idempotency-Key", "").strip()
        if len(key) > 255:
            raise InvalidInput("The Idempotency-Key is at most 255 characters.", code="invalid_idempotency_key")
        serializer = OrderCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        order, created = order_checkout(
            user=request.user,
            items=[(line["product"], line["quantity"]) for line in data["items"]],
            gateway_code=data["gateway"],
            coupon_code=data["coupon_code"].strip(),
            idempotency_key=key,
            source="api",
            ip_address=client_ip(request),
        )
        return self._checkout_response(order, status_code=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @action(detail=True, methods=["post"])
    def pay(self, request, *args, **kwargs):
        order = self.get_object()
        if order.status != Order.Status.PENDING:
            raise Conflict(f"This order is {order.status}; there is nothing to pay.", code="order_not_payable")
        return self._checkout_response(order, status_code=status.HTTP_200_OK)

    @action(detail=True, methods=["post"])
    def cancel(self, request, *args, **kwargs):
        order = self.get_object()
        serializer = OrderCancelSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        # Only a pending order, checked under the order's lock: a payment landing meanwhile wins.
        order_cancel(
            order=order, reason=serializer.validated_data["reason"], actor=request.user, source="api", only_pending=True
        )
        return Response(OrderSerializer(self.scoped_queryset().get(pk=order.pk)).data)


@extend_schema_view(
    list=extend_schema(summary="List my organization's invoices"),
    retrieve=extend_schema(summary="Get an invoice"),
    html=extend_schema(
        summary="The invoice as a printable HTML page", responses={(200, "text/html"): OpenApiTypes.STR}
    ),
    pdf=extend_schema(summary="The invoice as a PDF", responses={(200, "application/pdf"): OpenApiTypes.BINARY}),
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

    @action(detail=True, methods=["get"])
    def html(self, request, *args, **kwargs):
        invoice = self.get_object()
        return HttpResponse(invoice_html(invoice=invoice, pdf_url="pdf"), content_type="text/html; charset=utf-8")

    @action(detail=True, methods=["get"])
    def pdf(self, request, *args, **kwargs):
        invoice = self.get_object()
        response = HttpResponse(invoice_pdf(invoice=invoice), content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="{invoice.invoice_number}.pdf"'
        return response


@extend_schema_view(
    list=extend_schema(summary="List my organization's subscriptions"),
    retrieve=extend_schema(summary="Get a subscription"),
    create=extend_schema(
        summary="Subscribe my organization to a plan (checkout; owners and admins)",
        description=(
            "Monthly or yearly, through a gateway: a card gateway charges the organization's default saved "
            "payment method off-session, bank transfer waits for the money until the invoice's due date. With "
            "`trial` (the default) and a plan that offers one, the subscription starts in trial and converts to "
            "paid at its end; otherwise the first invoice is issued and collected at once, and the license "
            "becomes usable when it is paid. An organization has one live subscription (409 otherwise)."
        ),
        request=SubscriptionCreateSerializer,
        responses={201: SubscriptionCheckoutSerializer},
    ),
    upcoming_invoice=extend_schema(
        summary="The next renewal invoice as it would be issued now",
        description="The plan (or the one scheduled for the period end), the AI usage beyond the plan of the "
        "months closed by then, the coupon while it lasts and the organization's tax. Nothing is written.",
        responses=UpcomingInvoiceSerializer,
    ),
    preview_change=extend_schema(
        summary="Preview a plan change before confirming it",
        description="An upgrade (a dearer plan, same interval) applies now: the unused time of the current plan "
        "is credited and the remaining time of the new one charged, prorated by the second: "
        "`price × (period_end − now) / (period_end − period_start)`, plus tax. A downgrade or a new interval "
        "applies at the period end and costs nothing now.",
        parameters=[PlanChangeSerializer],
        responses=PlanChangePreviewSerializer,
    ),
    change_plan=extend_schema(
        summary="Change the plan (owners and admins)",
        description="As the preview says: an upgrade is invoiced and collected now, anything else is scheduled "
        "for the period end.",
        request=PlanChangeSerializer,
        responses=SubscriptionChangeResultSerializer,
    ),
    cancel=extend_schema(
        summary="Cancel at the period end, or at once with a prorated credit (owners and admins)",
        request=SubscriptionCancelSerializer,
        responses=SubscriptionChangeResultSerializer,
    ),
    pay=extend_schema(
        summary="Pay the open invoices now, optionally with another saved method (owners and admins)",
        description="After a failed renewal: the open invoices are charged at once (a card gateway) and a "
        "suspended license is reinstated when they are paid. `outcomes` gives each invoice's result: paid, "
        "pending (a bank transfer is awaited), failed, or skipped (being collected already).",
        request=SubscriptionPaySerializer,
        responses=SubscriptionPayResultSerializer,
    ),
    pause=extend_schema(
        summary="Pause: no billing, the license suspended (owners and admins)",
        request=None,
        responses=SubscriptionSerializer,
    ),
    resume=extend_schema(
        summary="Resume a paused subscription; the period is lengthened by the pause (owners and admins)",
        request=None,
        responses=SubscriptionSerializer,
    ),
)
class SubscriptionViewSet(TenantViewSet, ReadOnlyMixin):
    """Every member reads the subscription; owners and admins change it."""

    serializer_class = SubscriptionSerializer
    scope_resource = "subscriptions"
    write_roles = perms.MANAGER_ROLES
    filterset_class = SubscriptionFilterSet
    ordering_fields = ["created_at", "current_period_end"]
    ordering = ["-created_at"]

    def scoped_queryset(self) -> QuerySet:
        return selectors.subscription_list()

    def _payment_method(self, payment_method_id):
        if payment_method_id is None:
            return None
        method = PaymentMethod.objects.filter(pk=payment_method_id, organization=self.caller_organization()).first()
        if method is None:
            raise InvalidInput("Unknown payment method.", details={"payment_method": ["Unknown."]})
        return method

    def create(self, request, *args, **kwargs):
        serializer = SubscriptionCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        subscription = subscription_create(
            organization=self.caller_organization(),
            user=request.user,
            plan=data["plan"],
            interval=data["interval"],
            gateway_code=data["gateway"],
            payment_method=self._payment_method(data["payment_method"]),
            coupon_code=data["coupon_code"].strip(),
            with_trial=data["trial"],
            actor=request.user,
            source="api",
            ip_address=client_ip(request),
        )
        first = selectors.subscription_latest_invoice(subscription=subscription)
        if first is not None:
            invoice_collect(invoice_id=first.pk)  # committed already: the gateway is called outside it
        subscription = self.scoped_queryset().get(pk=subscription.pk)
        subscription.latest_invoice = selectors.subscription_latest_invoice(subscription=subscription)
        return Response(SubscriptionCheckoutSerializer(subscription).data, status=status.HTTP_201_CREATED)

    def _plan_change(self, data, subscription) -> tuple:
        serializer = PlanChangeSerializer(data=data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data["plan"], serializer.validated_data.get("interval") or subscription.interval

    def _changed(self, subscription, *, invoice=None, credit_notes=()) -> Response:
        subscription = self.scoped_queryset().get(pk=subscription.pk)
        subscription.invoice = selectors.invoice_list().get(pk=invoice.pk) if invoice is not None else None
        subscription.credit_notes = list(credit_notes)
        return Response(SubscriptionChangeResultSerializer(subscription).data)

    @action(detail=True, methods=["get"], url_path="upcoming-invoice")
    def upcoming_invoice(self, request, *args, **kwargs):
        subscription = self.get_object()
        renewal, draft = subscription_upcoming_invoice(subscription)
        body = {
            **_draft_body(subscription, draft),
            "period_start": renewal.period[0],
            "period_end": renewal.period[1],
            "plan": renewal.plan.code,
            "interval": renewal.interval,
        }
        return Response(UpcomingInvoiceSerializer(body).data)

    @action(detail=True, methods=["get"], url_path="preview-change")
    def preview_change(self, request, *args, **kwargs):
        subscription = self.get_object()
        plan, interval = self._plan_change(request.query_params, subscription)
        quote = plan_change_quote(subscription=subscription, plan=plan, interval=interval, at=timezone.now())
        body = {
            "plan": plan.code,
            "interval": interval,
            "effective": quote.effective,
            "proration_date": quote.at,
            "due_now": _draft_body(subscription, quote.draft) if quote.draft is not None else None,
            "next_period_price": quote.next_amount,
        }
        return Response(PlanChangePreviewSerializer(body).data)

    @action(detail=True, methods=["post"], url_path="change-plan")
    def change_plan(self, request, *args, **kwargs):
        subscription = self.get_object()
        plan, interval = self._plan_change(request.data, subscription)
        subscription, invoice = subscription_change_plan(
            subscription=subscription,
            plan=plan,
            interval=interval,
            actor=request.user,
            source="api",
            ip_address=client_ip(request),
        )
        if invoice is not None and invoice.status == invoice.Status.ISSUED:
            invoice_collect(invoice_id=invoice.pk)  # committed already: the gateway is called outside it
        return self._changed(subscription, invoice=invoice)

    @action(detail=True, methods=["post"])
    def cancel(self, request, *args, **kwargs):
        subscription = self.get_object()
        serializer = SubscriptionCancelSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        subscription, notes = subscription_cancel(
            subscription=subscription,
            at_period_end=serializer.validated_data["at_period_end"],
            actor=request.user,
            source="api",
            ip_address=client_ip(request),
        )
        return self._changed(subscription, credit_notes=notes)

    @action(detail=True, methods=["post"])
    def pay(self, request, *args, **kwargs):
        subscription = self.get_object()
        serializer = SubscriptionPaySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        outcomes = subscription_pay_now(
            subscription=subscription,
            payment_method=self._payment_method(serializer.validated_data["payment_method"]),
            actor=request.user,
            source="api",
            ip_address=client_ip(request),
        )
        subscription = self.scoped_queryset().get(pk=subscription.pk)
        return Response({"subscription": SubscriptionSerializer(subscription).data, "outcomes": outcomes})

    @action(detail=True, methods=["post"])
    def pause(self, request, *args, **kwargs):
        subscription = subscription_pause(
            subscription=self.get_object(), actor=request.user, source="api", ip_address=client_ip(request)
        )
        return Response(SubscriptionSerializer(self.scoped_queryset().get(pk=subscription.pk)).data)

    @action(detail=True, methods=["post"])
    def resume(self, request, *args, **kwargs):
        subscription = subscription_resume(
            subscription=self.get_object(), actor=request.user, source="api", ip_address=client_ip(request)
        )
        return Response(SubscriptionSerializer(self.scoped_queryset().get(pk=subscription.pk)).data)


def _draft_body(subscription, draft) -> dict:
    return {
        "currency": subscription.currency,
        "lines": draft.lines,
        "coupon_code": draft.coupon.code if draft.coupon else None,
        "tax_rate_percent": draft.tax_percent,
        **draft.amounts.document_fields(),
    }


@extend_schema_view(
    list=extend_schema(summary="List my organization's credit notes"),
    retrieve=extend_schema(summary="Get a credit note"),
    pdf=extend_schema(summary="The credit note as a PDF", responses={(200, "application/pdf"): OpenApiTypes.BINARY}),
)
class CreditNoteViewSet(TenantViewSet, ReadOnlyMixin):
    """Credits and partial refunds against the organization's invoices (issued by staff or a
    cancellation); every member reads them."""

    serializer_class = CreditNoteSerializer
    scope_resource = "credit-notes"
    filterset_class = CreditNoteFilterSet
    search_fields = ["credit_note_number", "invoice__invoice_number"]
    ordering_fields = ["issued_at", "total"]
    ordering = ["-issued_at"]

    def scoped_queryset(self) -> QuerySet:
        return selectors.credit_note_list()

    @action(detail=True, methods=["get"])
    def pdf(self, request, *args, **kwargs):
        note = self.get_object()
        response = HttpResponse(credit_note_pdf(note=note), content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="{note.credit_note_number}.pdf"'
        return response


class StripeWebhookView(APIView):
    """Stripe's webhook: unauthenticated, trusted only through Stripe's signature."""

    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema(
        summary="Stripe webhook (signed by Stripe)",
        request=OpenApiTypes.OBJECT,
        responses={200: StripeWebhookResultSerializer},
    )
    def post(self, request):
        payload = request._request.body  # the exact bytes Stripe signed
        event = stripe_event_construct(payload=payload, signature=request.headers.get("Stripe-Signature", ""))
        outcome = stripe_event_handle(event=event)
        return Response({"received": True, "event": event.id, "outcome": outcome})
