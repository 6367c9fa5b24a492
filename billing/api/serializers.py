"""Serializers of the billing endpoints. Gateway ``config`` and payment-method gateway tokens are
never part of any response."""

from rest_framework import serializers

from billing.models import (
    Coupon,
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
from licensing.models import SubscriptionPlan
from marketplace.models import Product

MAX_QUANTITY = 100


class PaymentGatewaySerializer(serializers.ModelSerializer):
    class Meta:
        model = PaymentGateway
        fields = ["id", "name", "code", "provider", "status", "fee_percentage", "fee_fixed", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]
        extra_kwargs = {
            "fee_percentage": {"min_value": 0, "max_value": 100},
            "fee_fixed": {"min_value": 0},
        }


class TaxRateSerializer(serializers.ModelSerializer):
    class Meta:
        model = TaxRate
        fields = ["id", "name", "code", "rate", "country_code", "region", "is_active", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]
        extra_kwargs = {"rate": {"min_value": 0, "max_value": 100}}

    def validate_country_code(self, value: str) -> str:
        if len(value) != 2 or not value.isalpha():
            raise serializers.ValidationError("Use a two-letter ISO 3166-1 country code.")
        return value.upper()


class CouponSerializer(serializers.ModelSerializer):
    class Meta:
        model = Coupon
        fields = [
            "id", "code", "description", "discount_type", "discount_value", "currency", "max_redemptions",
            "times_redeemed", "valid_from", "valid_until", "is_active", "duration", "duration_in_periods",
            "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["id", "times_redeemed", "created_at", "updated_at"]
        extra_kwargs = {
            "discount_value": {"min_value": 0},
            "max_redemptions": {"min_value": 1},
            "duration_in_periods": {"min_value": 1, "max_value": 120},
        }

    def validate_currency(self, value: str) -> str:
        if len(value) != 3 or not value.isalpha():
            raise serializers.ValidationError("Use a three-letter ISO 4217 code.")
        return value.upper()


class PaymentMethodSerializer(serializers.ModelSerializer):
    gateway = serializers.SlugRelatedField(slug_field="code", read_only=True, allow_null=True)

    class Meta:
        model = PaymentMethod
        fields = [
            "id", "user", "gateway", "type", "card_brand", "card_last4", "exp_month", "exp_year", "is_default",
            "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields


class OrderItemSerializer(serializers.ModelSerializer):
    product_name = serializers.CharField(source="product.name", read_only=True)

    class Meta:
        model = OrderItem
        fields = ["id", "product", "product_name", "description", "quantity", "unit_price", "total"]
        read_only_fields = fields


class OrderSerializer(serializers.ModelSerializer):
    gateway = serializers.SlugRelatedField(slug_field="code", read_only=True)
    coupon_code = serializers.CharField(source="coupon.code", read_only=True, allow_null=True)
    items = OrderItemSerializer(many=True, read_only=True)

    class Meta:
        model = Order
        fields = [
            "id", "order_number", "user", "status", "gateway", "currency", "subtotal", "discount_total",
            "tax_total", "tax_rate_percent", "total", "coupon_code", "items", "paid_at", "cancelled_at",
            "refunded_at", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields


class InvoiceLineSerializer(serializers.ModelSerializer):
    class Meta:
        model = InvoiceLine
        fields = ["id", "kind", "description", "quantity", "unit_price", "amount", "period_start", "period_end"]
        read_only_fields = fields


class InvoiceSerializer(serializers.ModelSerializer):
    order_number = serializers.CharField(source="order.order_number", read_only=True, allow_null=True, default=None)
    lines = InvoiceLineSerializer(many=True, read_only=True)

    class Meta:
        model = Invoice
        fields = [
            "id", "invoice_number", "order", "order_number", "subscription", "billing_reason", "user", "status",
            "currency", "subtotal", "discount_total", "tax_total", "total", "tax_rate_percent", "lines",
            "period_start", "period_end", "due_at", "collection_attempts", "next_collection_at", "billing_details",
            "issued_at", "paid_at", "voided_at", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields


class OrderLineInputSerializer(serializers.Serializer):
    product = serializers.PrimaryKeyRelatedField(queryset=Product.objects.all())
    quantity = serializers.IntegerField(min_value=1, max_value=MAX_QUANTITY, default=1)


class OrderCreateSerializer(serializers.Serializer):
    """A checkout request: what to buy, an optional coupon, and the gateway to pay through.
    Prices, discount, tax and total are computed on the server."""

    items = OrderLineInputSerializer(many=True, allow_empty=False, max_length=50)
    coupon_code = serializers.CharField(required=False, allow_blank=True, max_length=64, default="")
    gateway = serializers.SlugField(max_length=64)


class PaymentSessionSerializer(serializers.Serializer):
    gateway = serializers.CharField()
    reference = serializers.CharField()
    client_secret = serializers.CharField(help_text="Card gateways: confirm the payment with it client-side.")
    instructions = serializers.DictField(help_text="Bank transfer: where to send the money, and the reference.")


class OrderCheckoutSerializer(OrderSerializer):
    """An order as checkout returns it, with what the customer needs to pay it."""

    payment = PaymentSessionSerializer(read_only=True, allow_null=True, required=False)

    class Meta(OrderSerializer.Meta):
        fields = [*OrderSerializer.Meta.fields, "payment"]
        read_only_fields = fields


class OrderCancelSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=255, default="")


class StripeWebhookResultSerializer(serializers.Serializer):
    received = serializers.BooleanField()
    event = serializers.CharField()
    outcome = serializers.CharField()


class SubscriptionSerializer(serializers.ModelSerializer):
    plan = serializers.SlugRelatedField(slug_field="code", read_only=True)
    plan_name = serializers.CharField(source="plan.name", read_only=True)
    gateway = serializers.SlugRelatedField(slug_field="code", read_only=True)
    coupon_code = serializers.CharField(source="coupon.code", read_only=True, allow_null=True, default=None)
    pending_plan = serializers.SlugRelatedField(slug_field="code", read_only=True, allow_null=True)

    class Meta:
        model = Subscription
        fields = [
            "id", "plan", "plan_name", "interval", "status", "currency", "license", "user", "gateway",
            "payment_method", "coupon_code", "current_period_start", "current_period_end", "trial_end",
            "cancel_at_period_end", "pending_plan", "pending_interval", "past_due_since", "paused_at",
            "cancelled_at", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields


class SubscriptionCreateSerializer(serializers.Serializer):
    """Subscribe the caller's organization: the plan (its code), monthly or yearly, the gateway
    that collects each period (a card gateway charges the organization's default saved method)."""

    plan = serializers.SlugRelatedField(slug_field="code", queryset=SubscriptionPlan.objects.filter(is_active=True))
    interval = serializers.ChoiceField(choices=Subscription.Interval.choices)
    gateway = serializers.SlugField(max_length=64)
    payment_method = serializers.UUIDField(required=False, allow_null=True, default=None)
    coupon_code = serializers.CharField(required=False, allow_blank=True, max_length=64, default="")
    trial = serializers.BooleanField(required=False, default=True, help_text="Start with the plan's trial, if any.")


class SubscriptionCheckoutSerializer(SubscriptionSerializer):
    """A new subscription with its first invoice (none while in trial)."""

    latest_invoice = InvoiceSerializer(read_only=True, allow_null=True)

    class Meta(SubscriptionSerializer.Meta):
        fields = [*SubscriptionSerializer.Meta.fields, "latest_invoice"]
        read_only_fields = fields


class PlanChangeSerializer(serializers.Serializer):
    """A plan change: the plan (its code) and the interval (the current one when left out)."""

    plan = serializers.SlugRelatedField(slug_field="code", queryset=SubscriptionPlan.objects.filter(is_active=True))
    interval = serializers.ChoiceField(choices=Subscription.Interval.choices, required=False)


class ChargeLineSerializer(serializers.Serializer):
    kind = serializers.CharField()
    description = serializers.CharField()
    quantity = serializers.DecimalField(max_digits=20, decimal_places=6)
    unit_price = serializers.DecimalField(max_digits=20, decimal_places=8)
    amount = serializers.DecimalField(max_digits=20, decimal_places=8)


class DraftAmountsSerializer(serializers.Serializer):
    currency = serializers.CharField()
    lines = ChargeLineSerializer(many=True)
    coupon_code = serializers.CharField(allow_null=True)
    tax_rate_percent = serializers.DecimalField(max_digits=6, decimal_places=3)
    subtotal = serializers.DecimalField(max_digits=14, decimal_places=2)
    discount_total = serializers.DecimalField(max_digits=14, decimal_places=2)
    tax_total = serializers.DecimalField(max_digits=14, decimal_places=2)
    total = serializers.DecimalField(max_digits=14, decimal_places=2)


class PlanChangePreviewSerializer(serializers.Serializer):
    plan = serializers.CharField()
    interval = serializers.CharField()
    effective = serializers.ChoiceField(
        choices=["now", "period_end"], help_text="An upgrade applies now (prorated), anything else at the period end."
    )
    proration_date = serializers.DateTimeField()
    due_now = DraftAmountsSerializer(allow_null=True, help_text="The prorated invoice an upgrade issues now.")
    next_period_price = serializers.DecimalField(
        max_digits=14, decimal_places=2, help_text="The new plan's price per period, before coupon and tax."
    )


class UpcomingInvoiceSerializer(DraftAmountsSerializer):
    period_start = serializers.DateTimeField()
    period_end = serializers.DateTimeField()
    plan = serializers.CharField()
    interval = serializers.CharField()


class SubscriptionCancelSerializer(serializers.Serializer):
    at_period_end = serializers.BooleanField(
        default=True, help_text="False cancels at once, crediting the unused part of the paid period."
    )


class CreditNoteSerializer(serializers.ModelSerializer):
    invoice_number = serializers.CharField(source="invoice.invoice_number", read_only=True)

    class Meta:
        model = CreditNote
        fields = [
            "id", "credit_note_number", "invoice", "invoice_number", "kind", "currency", "subtotal", "tax_total",
            "total", "reason", "issued_at", "created_at",
        ]  # fmt: skip
        read_only_fields = fields


class SubscriptionChangeResultSerializer(SubscriptionSerializer):
    """The subscription after a change, with the invoice it issued or the credit notes."""

    invoice = InvoiceSerializer(read_only=True, allow_null=True)
    credit_notes = CreditNoteSerializer(many=True, read_only=True)

    class Meta(SubscriptionSerializer.Meta):
        fields = [*SubscriptionSerializer.Meta.fields, "invoice", "credit_notes"]
        read_only_fields = fields


class SubscriptionPaySerializer(serializers.Serializer):
    payment_method = serializers.UUIDField(
        required=False, allow_null=True, default=None, help_text="Charge this saved method from now on."
    )


class SubscriptionPayResultSerializer(serializers.Serializer):
    subscription = SubscriptionSerializer()
    outcomes = serializers.DictField(
        child=serializers.ChoiceField(choices=["paid", "pending", "failed", "skipped"]),
        help_text="Each open invoice's outcome, by invoice number.",
    )
