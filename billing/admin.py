"""Admin of gateways, payment methods, orders (with items, invoices and payment state), invoices,
taxes, coupons (with their usage) and document number sequences; revenue by month.

Orders are placed through checkout, which prices them; staff act on them through the services:
mark paid (bank transfers), refund, cancel, resend the invoice.
"""

from decimal import Decimal

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, DecimalField, Q, Sum
from django.db.models.functions import Coalesce
from django.http import Http404, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from unfold.decorators import action as unfold_action

from celaest.admin import (
    CelaestModelAdmin,
    ObjectOperationMixin,
    Panel,
    ReadOnlyTabularInline,
    changelist_url,
    contribute_panel,
    pretty_json,
)
from celaest.admin_display import (
    admin_link,
    format_money,
    humanised_time,
    money,
    short_key,
    status_badge,
    usage_meter,
)
from celaest.errors import DomainError
from celaest.net import client_ip
from identity.models import Organization
from licensing.models import LicenseUsageLog

from . import selectors
from .documents import invoice_html, invoice_pdf
from .models import (
    Coupon,
    DocumentSequence,
    Invoice,
    InvoiceLine,
    Order,
    OrderItem,
    PaymentGateway,
    PaymentMethod,
    Subscription,
    TaxRate,
)
from .services.invoices import invoice_resend
from .services.payments import order_cancel, order_mark_paid, order_refund

#: how many rows a panel of a change page lists (the rest: its "See all" link)
PANEL_ROWS = 20


@admin.register(PaymentGateway)
class PaymentGatewayAdmin(CelaestModelAdmin):
    list_display = ["name", "code", "provider", "status", "fee_percentage", "fee_fixed"]
    list_filter = ["provider", "status"]
    search_fields = ["name", "code"]
    prepopulated_fields = {"code": ["name"]}
    readonly_fields = ["created_at", "updated_at"]


@admin.register(PaymentMethod)
class PaymentMethodAdmin(CelaestModelAdmin):
    list_display = ["__str__", "user", "organization", "type", "card_brand", "expiry", "gateway", "is_default"]
    list_filter = ["type", "card_brand", "is_default"]
    list_select_related = ["user", "organization", "gateway"]
    search_fields = ["user__email", "organization__slug", "card_last4"]
    autocomplete_fields = ["organization", "user", "gateway"]
    readonly_fields = ["created_at", "updated_at"]

    @admin.display(description="expires")
    def expiry(self, obj):
        return f"{obj.exp_month:02d}/{obj.exp_year}" if obj.exp_month and obj.exp_year else "-"


@admin.register(Coupon)
class CouponAdmin(CelaestModelAdmin):
    list_display = [
        "code",
        "discount_type",
        "discount_value",
        "currency",
        "redemptions",
        "valid_from",
        "valid_until",
        "is_active",
    ]
    list_filter = ["discount_type", "is_active", "valid_from"]
    search_fields = ["code", "description"]
    readonly_fields = ["times_redeemed", "paid_orders", "discount_given", "created_at", "updated_at"]

    def get_list_display(self, request):
        return [*super().get_list_display(request), "paid_orders", "discount_given"]

    def get_queryset(self, request):
        paid = Q(orders__status=Order.Status.PAID)
        return (
            super()
            .get_queryset(request)
            .annotate(
                paid_order_count=Count("orders", filter=paid),
                discount_given_total=Coalesce(
                    Sum("orders__discount_total", filter=paid), 0, output_field=DecimalField()
                ),
            )
        )

    @admin.display(description="paid orders", ordering="paid_order_count")
    def paid_orders(self, obj):
        url = reverse("admin:billing_order_changelist") + f"?coupon__id__exact={obj.pk}"
        return format_html('<a href="{}">{}</a>', url, getattr(obj, "paid_order_count", 0))

    @admin.display(description="discount given (paid orders)", ordering="discount_given_total")
    def discount_given(self, obj):
        return getattr(obj, "discount_given_total", None)

    @admin.display(description="redeemed", ordering="times_redeemed")
    def redemptions(self, obj):
        limit = obj.max_redemptions if obj.max_redemptions is not None else "∞"
        return f"{obj.times_redeemed}/{limit}"


@admin.register(TaxRate)
class TaxRateAdmin(CelaestModelAdmin):
    list_display = ["name", "code", "rate", "country_code", "region", "is_active"]
    list_filter = ["is_active", "country_code"]
    search_fields = ["name", "code", "country_code", "region"]
    readonly_fields = ["created_at", "updated_at"]


class OrderItemInline(ReadOnlyTabularInline):
    model = OrderItem
    fields = ["product", "description", "quantity", "unit_price", "total"]
    readonly_fields = fields


class InvoiceInline(ReadOnlyTabularInline):
    model = Invoice
    fields = ["invoice_number", "status", "total", "currency", "issued_at", "paid_at", "voided_at"]
    readonly_fields = fields


_ORDER_AMOUNTS = [
    "currency",
    "subtotal",
    "coupon",
    "discount_total",
    "tax_rate",
    "tax_rate_percent",
    "tax_total",
    "total",
]
_ORDER_PAYMENT = [
    "gateway",
    "payment_state",
    "gateway_reference",
    "gateway_fee",
    "paid_at",
    "cancelled_at",
    "refunded_at",
]


@admin.register(Order)
class OrderAdmin(ObjectOperationMixin, CelaestModelAdmin):
    """Orders as checkout placed them: amounts and payment are read-only here; staff change an
    order's state with the actions, which go through the billing services (audited, with events)."""

    list_display = [
        "order_number",
        "organization",
        "user",
        "status",
        "total",
        "gateway",
        "paid_at",
        "created_at",
    ]
    list_filter = ["status", "gateway"]
    list_select_related = ["organization", "user", "gateway"]
    search_fields = ["order_number", "gateway_reference", "user__email", "organization__slug"]
    autocomplete_fields = ["organization", "user", "gateway", "tax_rate", "coupon"]
    date_hierarchy = "created_at"
    readonly_fields = [
        "order_number",
        "organization",
        "user",
        "status",
        *_ORDER_AMOUNTS,
        *_ORDER_PAYMENT,
        "idempotency_key",
        "request_hash",
        "created_at",
        "updated_at",
    ]
    inlines = [OrderItemInline, InvoiceInline]
    actions = ["mark_paid", "refund", "cancel", "resend_invoice"]
    fieldsets = [
        (None, {"fields": ["order_number", "organization", "user", "status", "notes"]}),
        ("Amounts", {"fields": _ORDER_AMOUNTS}),
        ("Payment", {"fields": _ORDER_PAYMENT}),
        (
            "Record",
            {"fields": ["idempotency_key", "request_hash", "created_at", "updated_at"], "classes": ["collapse"]},
        ),
    ]

    def has_add_permission(self, request):
        return False  # orders are placed through checkout, which prices them

    def has_delete_permission(self, request, obj=None):
        return False  # an order is cancelled or refunded (the actions), never deleted: its invoice refers to it

    # The same operations on one order: buttons on its page that ask why (ObjectOperationMixin).
    actions_detail = ["refund_one", "cancel_one"]

    def get_actions_detail(self, request, object_id):
        actions = super().get_actions_detail(request, object_id)
        order = Order.objects.filter(pk=object_id).only("status").first()
        allowed = {
            Order.Status.PAID: {"refund_one", "cancel_one"},
            Order.Status.PENDING: {"cancel_one"},
            Order.Status.FAILED: {"cancel_one"},
        }.get(order.status if order else None, set())
        return [item for item in actions if item.action_name.removeprefix("billing_order_") in allowed]

    @unfold_action(description="Refund", url_path="refund", permissions=["change"], icon="undo")
    def refund_one(self, request, object_id):
        return self.object_operation_view(
            request,
            object_id,
            title="Refund order",
            button="Refund",
            danger=True,
            explanation="The payment is refunded through its gateway; the invoice is credited.",
            operation=lambda order, data: order_refund(
                order=order, reason=data["reason"], actor=request.user, source="admin"
            ),
        )

    @unfold_action(description="Cancel", url_path="cancel", permissions=["change"], icon="cancel")
    def cancel_one(self, request, object_id):
        return self.object_operation_view(
            request,
            object_id,
            title="Cancel order",
            button="Cancel order",
            operation=lambda order, data: order_cancel(
                order=order, reason=data["reason"], actor=request.user, source="admin"
            ),
        )

    @admin.display(description="payment state")
    def payment_state(self, obj):
        if obj.status == Order.Status.PAID:
            fee = format_money(obj.gateway_fee, obj.currency)
            return format_html("Paid {} via {}, fee {}", humanised_time(obj.paid_at), obj.gateway, fee)
        if obj.status == Order.Status.PENDING:
            if obj.gateway.provider == PaymentGateway.Provider.MANUAL:
                return f"Awaiting a bank transfer with reference {obj.order_number}"
            return f"Awaiting payment {obj.gateway_reference or '(not started)'} at {obj.gateway}"
        return obj.get_status_display()

    def _apply(self, request, queryset, verb: str, operation) -> None:
        self.apply_each(
            request,
            queryset.select_related("gateway"),
            verb=verb,
            label=lambda order: order.order_number,
            operation=operation,
        )

    @admin.action(description="Mark selected orders paid (bank transfer received)", permissions=["change"])
    def mark_paid(self, request, queryset):
        def pay(order):
            if order.gateway.provider != PaymentGateway.Provider.MANUAL:
                raise DomainError(f"paid through {order.gateway}; its webhook records the payment")
            order_mark_paid(
                order=order,
                reference=f"manual:{request.user.email}",
                actor=request.user,
                source="admin",
                ip_address=client_ip(request),
            )

        self._apply(request, queryset, "marked paid", pay)

    @admin.action(description="Refund selected paid orders", permissions=["change"])
    def refund(self, request, queryset):
        self._apply(
            request,
            queryset,
            "refunded",
            lambda order: order_refund(
                order=order, reason=f"Refunded by {request.user} in the admin", actor=request.user, source="admin"
            ),
        )

    @admin.action(description="Cancel selected orders", permissions=["change"])
    def cancel(self, request, queryset):
        self._apply(
            request,
            queryset,
            "cancelled",
            lambda order: order_cancel(
                order=order, reason=f"Cancelled by {request.user} in the admin", actor=request.user, source="admin"
            ),
        )

    @admin.action(description="Resend the invoice of selected orders", permissions=["view"])
    def resend_invoice(self, request, queryset):
        def resend(order):
            invoice = order.invoices.order_by("-created_at").first()
            if invoice is None:
                raise DomainError("no invoice yet")
            invoice_resend(invoice=invoice, actor=request.user)

        self._apply(request, queryset, "queued for invoice e-mail", resend)

    # --- revenue by month ------------------------------------------------------------------------

    def get_urls(self):
        revenue = path("revenue/", self.admin_site.admin_view(self.revenue_view), name="billing_order_revenue")
        return [revenue, *super().get_urls()]

    def revenue_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        rows = selectors.revenue_by_month()
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Revenue by month",
            "rows": rows,
            # the same, each amount with its currency and decimals
            "lines": [
                {
                    **row,
                    **{
                        amount: format_money(row[amount], row["currency"])
                        for amount in ("gross", "tax", "discounts", "refunded", "fees", "net")
                    },
                }
                for row in rows
            ],
        }
        return TemplateResponse(request, "admin/billing/order/revenue.html", context)

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "revenue_url": reverse("admin:billing_order_revenue")}
        return super().changelist_view(request, extra_context)


@admin.register(OrderItem)
class OrderItemAdmin(CelaestModelAdmin):
    list_display = ["order", "product", "description", "quantity", "unit_price", "total"]
    list_select_related = ["order", "product"]
    search_fields = ["order__order_number", "product__name", "description"]
    autocomplete_fields = ["order", "product"]
    readonly_fields = ["created_at", "updated_at"]


@admin.register(Invoice)
class InvoiceAdmin(CelaestModelAdmin):
    """Invoices are issued when an order is paid and closed by its refund or cancellation: an
    issued document, which staff read (lines, taxes, coupon, payment) and resend, but never edit
    or delete (the order's refund or cancellation voids or credits it)."""

    actions = ["resend"]
    list_display = [
        "invoice_number",
        "organization",
        "user",
        "order",
        "status",
        "total",
        "currency",
        "issued_at",
        "paid_at",
    ]
    list_filter = ["status"]
    list_select_related = ["organization", "user", "order"]
    search_fields = ["invoice_number", "order__order_number", "user__email", "organization__slug"]
    autocomplete_fields = ["organization", "order", "user"]
    date_hierarchy = "created_at"
    readonly_fields = [
        "invoice_number",
        "organization",
        "order",
        "user",
        "status",
        "currency",
        "subtotal",
        "discount_total",
        "tax_total",
        "total",
        "issued_at",
        "paid_at",
        "voided_at",
        "billing_details_display",
        "document",
        "created_at",
        "updated_at",
    ]
    exclude = ["billing_details"]

    def has_add_permission(self, request):
        return False  # issued by payment, numbered from the gapless sequence

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="billing details")
    def billing_details_display(self, obj):
        return pretty_json(obj.billing_details)

    def get_panels(self, request, obj):
        order = Order.objects.select_related("coupon", "tax_rate", "gateway").filter(pk=obj.order_id).first()
        panels = [self._lines_panel(obj, order)]
        if order is None:  # not an order's invoice (a subscription's period): its lines and amounts
            return [self._amounts_panel(obj, coupon="—", tax="—"), *panels, *super().get_panels(request, obj)]
        coupon = f"{order.coupon.code} (−{format_money(order.discount_total, order.currency)})" if order.coupon else "—"
        tax = f"{order.tax_rate or 'tax'} {order.tax_rate_percent.normalize()}%" if order.tax_rate_id else "none"
        payment = Panel(
            title="Payment",
            facts=[
                ("Order", admin_link(order)),
                ("Order status", status_badge(order.status, order.get_status_display())),
                ("Gateway", str(order.gateway)),
                ("Reference", short_key(order.gateway_reference, keep=16)),
                ("Paid", humanised_time(obj.paid_at)),
                ("Gateway fee", money(order.gateway_fee, order.currency)),
                ("Refunded", humanised_time(order.refunded_at)),
                ("Voided", humanised_time(obj.voided_at)),
            ],
        )
        return [self._amounts_panel(obj, coupon=coupon, tax=tax), payment, *panels, *super().get_panels(request, obj)]

    @staticmethod
    def _lines_panel(invoice, order) -> Panel:
        """The invoice's own lines; for an order's invoice without them, the order's items."""
        lines = list(invoice.lines.order_by("position")[:PANEL_ROWS])
        if lines or order is None:
            return Panel(
                title="Lines",
                columns=["Kind", "Description", "Quantity", "Unit price", "Amount"],
                rows=[
                    [
                        line.get_kind_display(),
                        line.description,
                        f"{line.quantity.normalize():,f}",
                        money(line.unit_price, invoice.currency),
                        money(line.amount, invoice.currency),
                    ]
                    for line in lines
                ],
                more_url=changelist_url(InvoiceLine, invoice__id__exact=invoice.pk),
                more_label="All lines",
                wide=True,
            )
        items = order.items.select_related("product").order_by("created_at")[:PANEL_ROWS]
        return Panel(
            title="Lines",
            columns=["Product", "Description", "Quantity", "Unit price", "Amount"],
            rows=[
                [
                    admin_link(item.product),
                    item.description,
                    item.quantity,
                    money(item.unit_price, order.currency),
                    money(item.total, order.currency),
                ]
                for item in items
            ],
            more_url=changelist_url(OrderItem, order__id__exact=order.pk),
            more_label="All lines",
            wide=True,
        )

    @staticmethod
    def _amounts_panel(obj, *, coupon, tax) -> Panel:
        return Panel(
            title="Amounts",
            facts=[
                ("Status", status_badge(obj.status, obj.get_status_display())),
                ("Subtotal", money(obj.subtotal, obj.currency)),
                ("Coupon", coupon),
                ("Discount", money(obj.discount_total, obj.currency)),
                ("Tax rate", tax),
                ("Taxes", money(obj.tax_total, obj.currency)),
                ("Total", money(obj.total, obj.currency)),
                ("Issued", humanised_time(obj.issued_at)),
            ],
        )

    @admin.display(description="document")
    def document(self, obj):
        url = reverse("admin:billing_invoice_document", args=[obj.pk])
        return format_html('<a href="{}">HTML</a> · <a href="{}?pdf=1">PDF</a>', url, url)

    def get_urls(self):
        document = path(
            "<uuid:invoice_id>/document/",
            self.admin_site.admin_view(self.document_view),
            name="billing_invoice_document",
        )
        return [document, *super().get_urls()]

    def document_view(self, request, invoice_id):
        invoice = Invoice.objects.select_related("order").filter(pk=invoice_id).first()
        if invoice is None or not self.has_view_permission(request, invoice):
            raise Http404
        if request.GET.get("pdf"):
            response = HttpResponse(invoice_pdf(invoice=invoice), content_type="application/pdf")
            response["Content-Disposition"] = f'inline; filename="{invoice.invoice_number}.pdf"'
            return response
        return HttpResponse(invoice_html(invoice=invoice))

    @admin.action(description="Resend selected invoices by e-mail", permissions=["view"])
    def resend(self, request, queryset):
        for invoice in queryset:
            invoice_resend(invoice=invoice, actor=request.user)
        self.message_user(request, f"{queryset.count()} invoice(s) queued for e-mail.", messages.SUCCESS)


@admin.register(DocumentSequence)
class DocumentSequenceAdmin(CelaestModelAdmin):
    """The last order and invoice numbers handed out per year. Read-only: editing one would
    break gapless numbering."""

    list_display = ["key", "year", "last_number", "updated_at"]
    list_filter = ["key"]
    search_fields = ["key"]
    readonly_fields = ["key", "year", "last_number", "updated_at"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# --- the organization page: orders, invoices and what is owed ------------------------------------


def _sums_by_currency(queryset) -> str:
    totals = queryset.values("currency").annotate(amount=Sum("total")).order_by("currency")
    return ", ".join(format_money(row["amount"], row["currency"]) for row in totals) or format_money(0)


def _ai_spend_against_included(organization) -> str:
    """This period's AI spend (the licenses' metered cost) against what the organization's live
    subscriptions include (``PlanBillingTerms.included_ai_spend``; none set: no limit)."""
    today = timezone.now().date()
    spend = LicenseUsageLog.objects.filter(
        organization=organization, period_start__lte=today, period_end__gte=today
    ).aggregate(total=Sum("calculated_cost"))["total"] or Decimal("0")
    subscriptions = Subscription.objects.filter(
        organization=organization,
        status__in=[Subscription.Status.ACTIVE, Subscription.Status.TRIALING, Subscription.Status.PAST_DUE],
    ).select_related("plan__billing_terms")
    included = [getattr(getattr(sub.plan, "billing_terms", None), "included_ai_spend", None) for sub in subscriptions]
    limit = sum(included) if included and None not in included else None
    return usage_meter(spend, limit, shown=lambda amount: format_money(amount, "USD"))


def organization_billing_panels(request, organization) -> list[Panel]:
    orders = Order.objects.filter(organization=organization).order_by("-created_at")[: PANEL_ROWS // 2]
    invoices = Invoice.objects.filter(organization=organization).order_by("-created_at")[: PANEL_ROWS // 2]
    owed = Panel(
        title="Money",
        facts=[
            (
                "Owed (issued, unpaid invoices)",
                _sums_by_currency(Invoice.objects.filter(organization=organization, status=Invoice.Status.ISSUED)),
            ),
            (
                "Awaiting payment (pending orders)",
                _sums_by_currency(Order.objects.filter(organization=organization, status=Order.Status.PENDING)),
            ),
            ("AI spend this period", _ai_spend_against_included(organization)),
            (
                "Paid in total",
                _sums_by_currency(Order.objects.filter(organization=organization, status=Order.Status.PAID)),
            ),
        ],
    )
    return [
        owed,
        _documents_panel("Orders", Order, orders, organization, dated="created_at"),
        _documents_panel("Invoices", Invoice, invoices, organization, dated="issued_at"),
    ]


def _documents_panel(title, model, documents, organization, *, dated: str) -> Panel:
    """An organization's latest orders or invoices: number, status, total, date."""
    return Panel(
        title=title,
        columns=[
            model._meta.verbose_name.capitalize(),
            "Status",
            "Total",
            str(model._meta.get_field(dated).verbose_name).capitalize(),
        ],
        rows=[
            [
                admin_link(document),
                status_badge(document.status, document.get_status_display()),
                money(document.total, document.currency),
                humanised_time(getattr(document, dated)),
            ]
            for document in documents
        ],
        more_url=changelist_url(model, organization__id__exact=organization.pk),
        empty=f"No {model._meta.verbose_name}.",
    )


contribute_panel(Organization, organization_billing_panels, order=40)


from . import admin_subscriptions  # noqa: E402,F401 - subscriptions and plan billing terms
