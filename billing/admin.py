"""Admin of gateways, payment methods, orders (with items and invoices), invoices, taxes and coupons."""

from django.contrib import admin

from celaest.admin import CelaestModelAdmin, ReadOnlyTabularInline

from .models import Coupon, Invoice, Order, OrderItem, PaymentGateway, PaymentMethod, TaxRate


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
    readonly_fields = ["times_redeemed", "created_at", "updated_at"]

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


class OrderItemInline(admin.TabularInline):
    model = OrderItem
    fields = ["product", "description", "quantity", "unit_price", "total"]
    autocomplete_fields = ["product"]
    extra = 0


class InvoiceInline(ReadOnlyTabularInline):
    model = Invoice
    fields = ["invoice_number", "status", "total", "currency", "issued_at", "paid_at"]
    readonly_fields = fields


@admin.register(Order)
class OrderAdmin(CelaestModelAdmin):
    list_display = [
        "order_number",
        "organization",
        "user",
        "status",
        "total",
        "currency",
        "gateway",
        "paid_at",
        "created_at",
    ]
    list_filter = ["status", "gateway"]
    list_select_related = ["organization", "user", "gateway"]
    search_fields = ["order_number", "gateway_reference", "user__email", "organization__slug"]
    autocomplete_fields = ["organization", "user", "gateway", "tax_rate", "coupon"]
    date_hierarchy = "created_at"
    readonly_fields = ["idempotency_key", "request_hash", "created_at", "updated_at"]
    inlines = [OrderItemInline, InvoiceInline]
    fieldsets = [
        (None, {"fields": ["order_number", "organization", "user", "status", "notes"]}),
        (
            "Amounts",
            {
                "fields": [
                    "currency",
                    "subtotal",
                    "coupon",
                    "discount_total",
                    "tax_rate",
                    "tax_rate_percent",
                    "tax_total",
                    "total",
                ]
            },
        ),
        (
            "Payment",
            {"fields": ["gateway", "gateway_reference", "gateway_fee", "paid_at", "cancelled_at", "refunded_at"]},
        ),
        (
            "Record",
            {"fields": ["idempotency_key", "request_hash", "created_at", "updated_at"], "classes": ["collapse"]},
        ),
    ]


@admin.register(OrderItem)
class OrderItemAdmin(CelaestModelAdmin):
    list_display = ["order", "product", "description", "quantity", "unit_price", "total"]
    list_select_related = ["order", "product"]
    search_fields = ["order__order_number", "product__name", "description"]
    autocomplete_fields = ["order", "product"]
    readonly_fields = ["created_at", "updated_at"]


@admin.register(Invoice)
class InvoiceAdmin(CelaestModelAdmin):
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
    readonly_fields = ["created_at", "updated_at"]
