"""Gateways, payment methods, orders with their items, invoices, tax rates and coupons."""

from django.db import models
from django.db.models import F, Q

from celaest.db import TimeStampedModel, UUIDModel
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


class Invoice(TimeStampedModel):
    class Status(models.TextChoices):
        ISSUED = "issued", "Issued"
        PAID = "paid", "Paid"
        VOID = "void", "Void"
        CREDITED = "credited", "Credited"

    invoice_number = models.CharField(max_length=32, unique=True)
    organization = models.ForeignKey("identity.Organization", on_delete=models.PROTECT, related_name="invoices")
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="invoices")
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
        ]

    def __str__(self):
        return self.invoice_number


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
