"""Gateways, payment methods, orders with their items, invoices, tax rates and coupons."""

from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from celaest.db import TimeStampedModel, UUIDModel
from celaest.errors import ImmutableRecord
from celaest.money import CurrencyField, MoneyField


class PaymentGateway(TimeStampedModel):
    class Provider(models.TextChoices):
        MANUAL = "manual", "Manual (bank transfer)"
        STRIPE = "stripe", "Stripe"

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        INACTIVE = "inactive", "Inactive"
        TEST = "test", "Test mode"

    name = models.CharField(max_length=120)
    code = models.SlugField(max_length=64, unique=True)
    provider = models.CharField(max_length=32, choices=Provider.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    fee_percentage = models.DecimalField(max_digits=5, decimal_places=2, default=0)
    fee_fixed = MoneyField()
    config = models.JSONField(
        default=dict, blank=True, help_text="Non-secret settings; secrets come from the environment."
    )

    class Meta:
        db_table = "payment_gateways"
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(fee_percentage__gte=0, fee_percentage__lte=100), name="gateways_fee_percentage_0_100"
            ),
            models.CheckConstraint(condition=Q(fee_fixed__gte=0), name="gateways_fee_fixed_non_negative"),
        ]

    def __str__(self):
        return self.name


class PaymentMethod(TimeStampedModel):
    """A saved way to pay: only the gateway's token, brand, last4 and expiry — never a card number."""

    class Type(models.TextChoices):
        CARD = "card", "Card"
        BANK_TRANSFER = "bank_transfer", "Bank transfer"
        SEPA_DEBIT = "sepa_debit", "SEPA debit"
        PAYPAL = "paypal", "PayPal"

    class CardBrand(models.TextChoices):
        VISA = "visa", "Visa"
        MASTERCARD = "mastercard", "Mastercard"
        AMEX = "amex", "American Express"
        DISCOVER = "discover", "Discover"
        DINERS = "diners", "Diners Club"
        JCB = "jcb", "JCB"
        UNIONPAY = "unionpay", "UnionPay"
        OTHER = "other", "Other"

    organization = models.ForeignKey("identity.Organization", on_delete=models.CASCADE, related_name="payment_methods")
    user = models.ForeignKey("identity.User", on_delete=models.CASCADE, related_name="payment_methods")
    gateway = models.ForeignKey(PaymentGateway, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    type = models.CharField(max_length=16, choices=Type.choices)
    card_brand = models.CharField(max_length=16, choices=CardBrand.choices, blank=True)
    card_last4 = models.CharField(max_length=4, blank=True)
    exp_month = models.PositiveSmallIntegerField(null=True, blank=True)
    exp_year = models.PositiveSmallIntegerField(null=True, blank=True)
    gateway_token = models.CharField(max_length=255, blank=True, help_text="The gateway's id for this method.")
    gateway_customer = models.CharField(
        max_length=255, blank=True, help_text="The gateway's customer the method is saved on (charged off-session)."
    )
    is_default = models.BooleanField(default=False)

    class Meta:
        db_table = "payment_methods"
        ordering = ["-is_default", "-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["user"], condition=Q(is_default=True), name="payment_methods_one_default"),
            models.CheckConstraint(
                condition=Q(exp_month__isnull=True) | Q(exp_month__gte=1, exp_month__lte=12),
                name="payment_methods_exp_month_1_12",
            ),
            models.CheckConstraint(
                condition=Q(card_last4="") | Q(card_last4__regex=r"^[0-9]{4}$"), name="payment_methods_last4_digits"
            ),
        ]

    def __str__(self):
        return f"{self.card_brand or self.type} {self.card_last4}".strip()


class Coupon(TimeStampedModel):
    class DiscountType(models.TextChoices):
        PERCENTAGE = "percentage", "Percentage"
        FIXED = "fixed", "Fixed amount"

    class Duration(models.TextChoices):
        """How many of a subscription's invoices the coupon discounts (an order has one)."""

        ONCE = "once", "Once"
        REPEATING = "repeating", "For a number of periods"
        FOREVER = "forever", "Forever"

    code = models.CharField(max_length=64, unique=True)
    description = models.CharField(max_length=255, blank=True)
    discount_type = models.CharField(max_length=16, choices=DiscountType.choices)
    discount_value = models.DecimalField(max_digits=12, decimal_places=2)
    currency = CurrencyField()
    max_redemptions = models.PositiveIntegerField(null=True, blank=True)
    times_redeemed = models.PositiveIntegerField(default=0)
    valid_from = models.DateTimeField()
    valid_until = models.DateTimeField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    duration = models.CharField(max_length=16, choices=Duration.choices, default=Duration.ONCE)
    duration_in_periods = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="For a repeating coupon: how many billing periods it discounts."
    )

    class Meta:
        db_table = "coupons"
        ordering = ["-valid_from"]
        constraints = [
            models.CheckConstraint(condition=Q(discount_value__gte=0), name="coupons_value_non_negative"),
            models.CheckConstraint(
                condition=~Q(discount_type="percentage") | Q(discount_value__lte=100), name="coupons_percentage_le_100"
            ),
            models.CheckConstraint(
                condition=Q(valid_until__isnull=True) | Q(valid_until__gt=F("valid_from")),
                name="coupons_valid_until_after_from",
            ),
            models.CheckConstraint(
                condition=Q(max_redemptions__isnull=True) | Q(times_redeemed__lte=F("max_redemptions")),
                name="coupons_redemptions_within_max",
            ),
            models.CheckConstraint(
                condition=~Q(duration="repeating") | Q(duration_in_periods__gte=1),
                name="coupons_repeating_has_periods",
            ),
        ]

    def __str__(self):
        return self.code


class TaxRate(TimeStampedModel):
    name = models.CharField(max_length=120)
    code = models.SlugField(max_length=64, unique=True)
    rate = models.DecimalField(max_digits=6, decimal_places=3, help_text="Percent, e.g. 21.000")
    country_code = models.CharField(max_length=2)
    region = models.CharField(max_length=64, blank=True)
    is_active = models.BooleanField(default=True)

    class Meta:
        db_table = "tax_rates"
        ordering = ["country_code", "name"]
        indexes = [models.Index(fields=["country_code"], name="idx_tax_rates_active", condition=Q(is_active=True))]
        constraints = [
            models.CheckConstraint(condition=Q(rate__gte=0, rate__lte=100), name="tax_rates_rate_0_100"),
        ]

    def __str__(self):
        return f"{self.name} ({self.rate}%)"


_AMOUNTS_NON_NEGATIVE = Q(subtotal__gte=0, discount_total__gte=0, tax_total__gte=0, total__gte=0)


class Order(TimeStampedModel):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending payment"
        PAID = "paid", "Paid"
        FAILED = "failed", "Payment failed"
        CANCELLED = "cancelled", "Cancelled"
        REFUNDED = "refunded", "Refunded"

    order_number = models.CharField(max_length=32, unique=True)
    organization = models.ForeignKey("identity.Organization", on_delete=models.PROTECT, related_name="orders")
    user = models.ForeignKey("identity.User", on_delete=models.PROTECT, related_name="orders")
    gateway = models.ForeignKey(PaymentGateway, on_delete=models.PROTECT, related_name="orders")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    currency = CurrencyField()
    subtotal = MoneyField()
    discount_total = MoneyField()
    tax_total = MoneyField()
    total = MoneyField()
    tax_rate = models.ForeignKey(TaxRate, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    tax_rate_percent = models.DecimalField(max_digits=6, decimal_places=3, default=0)
    coupon = models.ForeignKey(Coupon, on_delete=models.PROTECT, null=True, blank=True, related_name="orders")
    gateway_fee = MoneyField()
    gateway_reference = models.CharField(max_length=255, blank=True)
    idempotency_key = models.CharField(max_length=255, blank=True)
    request_hash = models.CharField(max_length=64, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    refunded_at = models.DateTimeField(null=True, blank=True)
    notes = models.TextField(blank=True)

    class Meta:
        db_table = "orders"
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["organization", "created_at"], name="idx_orders_org_created")]
        constraints = [
            models.CheckConstraint(condition=_AMOUNTS_NON_NEGATIVE, name="orders_amounts_non_negative"),
            models.UniqueConstraint(
                fields=["user", "idempotency_key"], condition=~Q(idempotency_key=""), name="orders_idempotency_unique"
            ),
        ]

    def __str__(self):
        return self.order_number


class OrderItem(TimeStampedModel):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="items")
    product = models.ForeignKey("marketplace.Product", on_delete=models.PROTECT, related_name="order_items")
    description = models.CharField(max_length=255, blank=True)
    quantity = models.PositiveIntegerField(default=1)
    unit_price = MoneyField()
    total = MoneyField()

    class Meta:
        db_table = "order_items"
        ordering = ["created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gte=1), name="order_items_quantity_min_1"),
            models.CheckConstraint(
                condition=Q(unit_price__gte=0, total__gte=0), name="order_items_amounts_non_negative"
            ),
        ]

    def __str__(self):
        return f"{self.quantity} × {self.description or self.product_id}"


#: what may still change on an issued invoice: its lifecycle and its collection, nothing it says
INVOICE_MUTABLE_FIELDS = frozenset(
    {
        "status",
        "paid_at",
        "voided_at",
        "gateway_reference",
        "collection_attempts",
        "next_collection_at",
        "last_collection_error",
        "updated_at",
    }
)


class InvoiceQuerySet(models.QuerySet):
    """Issued invoices are documents: a bulk update may touch their lifecycle fields only, and
    they are never deleted."""

    def update(self, **kwargs):
        _refuse_invoice_edit(set(kwargs) - INVOICE_MUTABLE_FIELDS)
        return super().update(**kwargs)

    def delete(self):
        raise ImmutableRecord("An issued invoice cannot be deleted; void or credit it.", code="invoice_immutable")


def _refuse_invoice_edit(fields) -> None:
    if fields:
        raise ImmutableRecord(
            "An issued invoice cannot be edited; void or credit it.",
            code="invoice_immutable",
            details={"fields": sorted(fields)},
        )


class Invoice(TimeStampedModel):
    class Status(models.TextChoices):
        ISSUED = "issued", "Issued"
        PAID = "paid", "Paid"
        VOID = "void", "Void"
        CREDITED = "credited", "Credited"

    class Reason(models.TextChoices):
        ORDER = "order", "Order"
        SUBSCRIPTION_CREATE = "subscription_create", "Subscription started"
        SUBSCRIPTION_CYCLE = "subscription_cycle", "Subscription renewal"
        SUBSCRIPTION_UPDATE = "subscription_update", "Subscription change"

    invoice_number = models.CharField(max_length=32, unique=True)
    organization = models.ForeignKey("identity.Organization", on_delete=models.PROTECT, related_name="invoices")
    order = models.ForeignKey(Order, on_delete=models.PROTECT, null=True, blank=True, related_name="invoices")
    subscription = models.ForeignKey(
        "Subscription", on_delete=models.PROTECT, null=True, blank=True, related_name="invoices"
    )
    billing_reason = models.CharField(max_length=24, choices=Reason.choices, default=Reason.ORDER)
    period_start = models.DateTimeField(null=True, blank=True)
    period_end = models.DateTimeField(null=True, blank=True)
    gateway = models.ForeignKey(PaymentGateway, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    gateway_reference = models.CharField(max_length=255, blank=True)
    coupon = models.ForeignKey(Coupon, on_delete=models.PROTECT, null=True, blank=True, related_name="invoices")
    tax_rate_percent = models.DecimalField(max_digits=6, decimal_places=3, default=0)
    due_at = models.DateTimeField(null=True, blank=True)
    collection_attempts = models.PositiveSmallIntegerField(default=0)
    next_collection_at = models.DateTimeField(null=True, blank=True)
    last_collection_error = models.CharField(max_length=255, blank=True)

    objects = InvoiceQuerySet.as_manager()
    user = models.ForeignKey("identity.User", on_delete=models.PROTECT, related_name="invoices")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ISSUED)
    currency = CurrencyField()
    subtotal = MoneyField()
    discount_total = MoneyField()
    tax_total = MoneyField()
    total = MoneyField()
    billing_details = models.JSONField(default=dict, blank=True, help_text="Buyer details as of issue.")
    issued_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "invoices"
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["organization", "created_at"], name="idx_invoices_org_created")]
        constraints = [
            models.CheckConstraint(condition=_AMOUNTS_NON_NEGATIVE, name="invoices_amounts_non_negative"),
            # Payment confirmations are serialized on the order row; this is the last line of defence.
            models.UniqueConstraint(
                fields=["order"], condition=Q(status__in=["issued", "paid"]), name="invoices_one_live_per_order"
            ),
            # The renewal job locks the subscription before issuing; this is the last line of defence.
            models.UniqueConstraint(
                fields=["subscription", "period_start"],
                condition=Q(billing_reason="subscription_cycle"),
                name="invoices_one_renewal_per_period",
            ),
            models.CheckConstraint(
                condition=Q(order__isnull=False) | Q(subscription__isnull=False), name="invoices_order_or_subscription"
            ),
        ]

    def __str__(self):
        return self.invoice_number

    def save(self, *args, **kwargs):
        """An invoice is issued when it is stored: after that only its lifecycle fields change
        (``INVOICE_MUTABLE_FIELDS``), whatever saves it (a service, the admin, a shell)."""
        if not self._state.adding:
            update_fields = kwargs.get("update_fields")
            if update_fields is not None:
                _refuse_invoice_edit(set(update_fields) - INVOICE_MUTABLE_FIELDS)
            else:
                stored = type(self)._base_manager.filter(pk=self.pk).values(*self._frozen_fields()).first()
                if stored is not None:
                    _refuse_invoice_edit({name for name, value in stored.items() if getattr(self, name) != value})
        return super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ImmutableRecord("An issued invoice cannot be deleted; void or credit it.", code="invoice_immutable")

    @classmethod
    def _frozen_fields(cls) -> list[str]:
        return [
            f.attname for f in cls._meta.concrete_fields if f.name not in INVOICE_MUTABLE_FIELDS and not f.primary_key
        ]


class InvoiceLine(UUIDModel):
    """One line of a subscription invoice (an order's invoice shows the order's items)."""

    class Kind(models.TextChoices):
        PLAN = "plan", "Plan"
        OVERAGE = "overage", "Usage beyond the plan"
        PRORATION = "proration", "Proration"

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    description = models.CharField(max_length=255)
    quantity = models.DecimalField(max_digits=20, decimal_places=6, default=1)
    unit_price = models.DecimalField(max_digits=20, decimal_places=8, default=0)
    amount = models.DecimalField(max_digits=14, decimal_places=4, help_text="Exact; rounded on the invoice total.")
    period_start = models.DateTimeField(null=True, blank=True)
    period_end = models.DateTimeField(null=True, blank=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        db_table = "billing_invoice_lines"
        ordering = ["invoice", "position"]

    def __str__(self):
        return self.description


class PlanBillingTerms(TimeStampedModel):
    """What a plan's price includes of AI usage, and how usage beyond it is billed.

    ``included_*`` left empty means "no allowance of that kind". Overage is priced per 1,000
    input and output tokens, per request, or as the provider cost plus ``cost_markup_percent``;
    ``hard_cap`` bills nothing beyond the plan (the license's limits refuse the work instead).
    """

    class Overage(models.TextChoices):
        NONE = "none", "Not billed"
        HARD_CAP = "hard_cap", "Hard cap (no overage)"
        PER_TOKEN = "per_token", "Per 1k input/output tokens"
        PER_REQUEST = "per_request", "Per request"
        COST_PLUS = "cost_plus", "Provider cost plus markup"

    plan = models.OneToOneField("licensing.SubscriptionPlan", on_delete=models.CASCADE, related_name="billing_terms")
    included_ai_requests = models.PositiveBigIntegerField("included AI requests", null=True, blank=True)
    included_tokens = models.PositiveBigIntegerField(null=True, blank=True)
    included_ai_spend = models.DecimalField(
        "included AI spend (USD)", max_digits=14, decimal_places=4, null=True, blank=True
    )
    overage = models.CharField(max_length=16, choices=Overage.choices, default=Overage.NONE)
    price_per_1k_input_tokens = models.DecimalField(max_digits=14, decimal_places=6, default=0)
    price_per_1k_output_tokens = models.DecimalField(max_digits=14, decimal_places=6, default=0)
    price_per_request = models.DecimalField(max_digits=14, decimal_places=6, default=0)
    cost_markup_percent = models.DecimalField(max_digits=7, decimal_places=3, default=0)
    trial_days = models.PositiveSmallIntegerField(default=0, help_text="Days of trial a new subscription gets.")

    class Meta:
        db_table = "billing_plan_terms"
        verbose_name_plural = "plan billing terms"
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    price_per_1k_input_tokens__gte=0,
                    price_per_1k_output_tokens__gte=0,
                    price_per_request__gte=0,
                    cost_markup_percent__gte=0,
                ),
                name="plan_terms_prices_non_negative",
            ),
        ]

    def __str__(self):
        return f"Billing terms of {self.plan_id}"


class Subscription(TimeStampedModel):
    """An organization's plan, billed each month or year; its license is the entitlement.

    Paid periods are counted from ``billing_anchor`` in the organization's time zone (period
    ``n`` starts ``n`` months or years after it, on the anchor's day or the month's last), so a
    subscription started on 31 January renews on 28/29 February, then 31 March.
    """

    class Interval(models.TextChoices):
        MONTH = "month", "Monthly"
        YEAR = "year", "Yearly"

    class Status(models.TextChoices):
        INCOMPLETE = "incomplete", "Awaiting first payment"
        TRIALING = "trialing", "Trial"
        ACTIVE = "active", "Active"
        PAST_DUE = "past_due", "Past due"
        PAUSED = "paused", "Paused"
        CANCELLED = "cancelled", "Cancelled"

    organization = models.ForeignKey("identity.Organization", on_delete=models.PROTECT, related_name="subscriptions")
    user = models.ForeignKey(
        "identity.User", on_delete=models.PROTECT, related_name="subscriptions", help_text="Who subscribed."
    )
    license = models.OneToOneField("licensing.License", on_delete=models.PROTECT, related_name="subscription")
    plan = models.ForeignKey("licensing.SubscriptionPlan", on_delete=models.PROTECT, related_name="subscriptions")
    interval = models.CharField(max_length=8, choices=Interval.choices)
    status = models.CharField(max_length=16, choices=Status.choices)
    currency = CurrencyField()
    gateway = models.ForeignKey(PaymentGateway, on_delete=models.PROTECT, related_name="subscriptions")
    payment_method = models.ForeignKey(
        PaymentMethod, on_delete=models.SET_NULL, null=True, blank=True, related_name="subscriptions"
    )
    coupon = models.ForeignKey(Coupon, on_delete=models.PROTECT, null=True, blank=True, related_name="subscriptions")
    coupon_periods_used = models.PositiveSmallIntegerField(default=0)
    billing_anchor = models.DateTimeField(help_text="The start of the first paid period.")
    periods_billed = models.PositiveIntegerField(default=0)
    current_period_start = models.DateTimeField()
    current_period_end = models.DateTimeField()
    trial_end = models.DateTimeField(null=True, blank=True)
    cancel_at_period_end = models.BooleanField(default=False)
    pending_plan = models.ForeignKey(
        "licensing.SubscriptionPlan", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    pending_interval = models.CharField(max_length=8, choices=Interval.choices, blank=True)
    usage_billed_through = models.DateField(
        null=True, blank=True, help_text="The end of the last usage month whose overage was invoiced."
    )
    past_due_since = models.DateTimeField(null=True, blank=True)
    paused_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "subscriptions"
        ordering = ["-created_at"]
        indexes = [
            # The renewal job's scan: live subscriptions whose period has ended.
            models.Index(
                fields=["current_period_end"],
                name="idx_subscriptions_due",
                condition=Q(status__in=["trialing", "active", "past_due"]),
            ),
            models.Index(fields=["organization", "status"], name="idx_subscriptions_org_status"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(current_period_end__gt=F("current_period_start")), name="subscriptions_period_ordered"
            ),
            # Subscribing twice at once (two tabs, a retry) leaves one subscription.
            models.UniqueConstraint(
                fields=["organization"], condition=~Q(status="cancelled"), name="subscriptions_one_live_per_org"
            ),
        ]

    def __str__(self):
        return f"{self.plan_id} ({self.interval}) for {self.organization_id}"


class CreditNote(TimeStampedModel):
    """A partial (or whole) credit against an issued invoice: money refunded through the gateway or
    credited to the customer. Numbered from its own gapless ``CN-YYYY-NNNNNN`` sequence."""

    class Kind(models.TextChoices):
        REFUND = "refund", "Refunded"
        CREDIT = "credit", "Credit to the customer"

    credit_note_number = models.CharField(max_length=32, unique=True)
    organization = models.ForeignKey("identity.Organization", on_delete=models.PROTECT, related_name="credit_notes")
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="credit_notes")
    user = models.ForeignKey(
        "identity.User", on_delete=models.PROTECT, null=True, blank=True, related_name="+", help_text="Who issued it."
    )
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.CREDIT)
    currency = CurrencyField()
    subtotal = MoneyField()
    tax_total = MoneyField()
    total = MoneyField()
    reason = models.CharField(max_length=255)
    gateway_reference = models.CharField(max_length=255, blank=True)
    issued_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "billing_credit_notes"
        ordering = ["-issued_at"]
        indexes = [models.Index(fields=["organization", "issued_at"], name="idx_credit_notes_org_issued")]
        constraints = [
            models.CheckConstraint(
                condition=Q(subtotal__gt=0, tax_total__gte=0, total__gt=0), name="credit_notes_amounts_positive"
            ),
        ]

    def __str__(self):
        return self.credit_note_number


class UsageAlert(UUIDModel):
    """A usage threshold (80% or 100% of what the plan includes) reached in a period: alerted once."""

    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="usage_alerts")
    organization = models.ForeignKey("identity.Organization", on_delete=models.CASCADE, related_name="+")
    period_start = models.DateField(help_text="The usage month (license_usage_log.period_start).")
    metric = models.CharField(max_length=32)
    threshold_percent = models.PositiveSmallIntegerField()
    used = models.DecimalField(max_digits=20, decimal_places=8)
    included = models.DecimalField(max_digits=20, decimal_places=8)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        db_table = "billing_usage_alerts"
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "period_start", "metric", "threshold_percent"],
                name="usage_alerts_once_per_period",
            )
        ]

    def __str__(self):
        return f"{self.metric} {self.threshold_percent}%"


class DocumentSequence(UUIDModel):
    """The last number handed out for one kind of document (``invoice``, ``order``) in one year.

    Numbers are allocated under this row's lock inside the transaction that stores the document,
    so a rollback returns its number and invoice numbers stay gapless.
    """

    key = models.CharField(max_length=32)
    year = models.PositiveSmallIntegerField()
    last_number = models.PositiveBigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "billing_document_sequences"
        ordering = ["key", "-year"]
        constraints = [models.UniqueConstraint(fields=["key", "year"], name="document_sequences_key_year_unique")]

    def __str__(self):
        return f"{self.key} {self.year}: {self.last_number}"
