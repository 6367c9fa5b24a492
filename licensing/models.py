"""Subscription plans, the licenses organizations hold, and per-period usage of each license."""

from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from celaest.db import ChangeAnnouncingManager, SoftDeleteModel, TimeStampedModel
from celaest.money import CostField, CurrencyField, MoneyField


class MachineScheme(models.TextChoices):
    """How a license's machines hold their seats."""

    #: a machine keeps its seat until it is deactivated (or, with a heartbeat window, its lease lapses)
    NODE_LOCKED = "node_locked", "Node-locked"
    #: a seat is a lease: it is held only while the machine's heartbeats keep it alive
    FLOATING = "floating", "Floating"


class OverageAllowance(models.IntegerChoices):
    """How far past ``max_machines`` activations are still admitted, in percent of the limit
    (rounded down): within it a machine is answered valid with the OVERAGE code."""

    NONE = 100, "None"
    X1_25 = 125, "1.25x"
    X1_5 = 150, "1.5x"
    X2 = 200, "2x"


class SubscriptionPlan(TimeStampedModel):
    """A plan. ``limits`` keys: max_users, ai_requests_per_month, tokens_per_month,
    max_machines, max_batch_size. ``features`` lists what the plan unlocks: its entitlement codes.
    The machine policy (scheme, overage allowance, heartbeat window) applies to every license of
    the plan that does not override it."""

    code = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    price_monthly = MoneyField()
    price_yearly = MoneyField()
    currency = CurrencyField()
    limits = models.JSONField(default=dict, blank=True)
    features = models.JSONField("features (entitlement codes)", default=list, blank=True)
    machine_scheme = models.CharField(max_length=16, choices=MachineScheme.choices, default=MachineScheme.NODE_LOCKED)
    overage_allowance = models.PositiveSmallIntegerField(
        choices=OverageAllowance.choices, default=OverageAllowance.NONE
    )
    heartbeat_window_seconds = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="A machine must send a heartbeat at least this often, or its seat is released. "
        "Empty: no heartbeat (floating plans then use the default window).",
    )
    is_active = models.BooleanField(default=True)
    sort_order = models.IntegerField(default=0)

    objects = ChangeAnnouncingManager()

    class Meta:
        db_table = "subscription_plans"
        verbose_name = "subscription plan"
        ordering = ["sort_order", "price_monthly"]
        constraints = [
            models.CheckConstraint(condition=Q(price_monthly__gte=0), name="plans_price_monthly_non_negative"),
            models.CheckConstraint(condition=Q(price_yearly__gte=0), name="plans_price_yearly_non_negative"),
        ]

    def __str__(self):
        return f"{self.name} ({self.code})"


class BillingState(models.TextChoices):
    """What billing says of the license's subscription: validation answers a warning when past due."""

    CURRENT = "current", "Current"
    PAST_DUE = "past_due", "Payment past due"


class License(SoftDeleteModel):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        TRIAL = "trial", "Trial"
        SUSPENDED = "suspended", "Suspended"
        EXPIRED = "expired", "Expired"
        REVOKED = "revoked", "Revoked"

    organization = models.ForeignKey("identity.Organization", on_delete=models.PROTECT, related_name="licenses")
    plan = models.ForeignKey(SubscriptionPlan, on_delete=models.PROTECT, related_name="licenses")
    license_key = models.CharField(max_length=64, unique=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    status_reason = models.CharField(max_length=255, blank=True)
    # What a reinstatement returns to (a suspended trial stays a trial).
    status_before_suspension = models.CharField(max_length=16, choices=Status.choices, blank=True)
    issued_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    suspended_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    ai_requests_used = models.PositiveBigIntegerField("AI requests used", default=0)
    custom_limits = models.JSONField(default=dict, blank=True)
    # The plan's machine policy, overridden for this license where set (null/blank: the plan's).
    machine_scheme = models.CharField(max_length=16, choices=MachineScheme.choices, null=True, blank=True)
    overage_allowance = models.PositiveSmallIntegerField(choices=OverageAllowance.choices, null=True, blank=True)
    heartbeat_window_seconds = models.PositiveIntegerField(
        null=True, blank=True, help_text="Empty: the plan's window. 0: no heartbeat for this license."
    )
    entitlements = models.JSONField(
        "extra entitlements", default=list, blank=True, help_text="Entitlement codes on top of the plan's features."
    )
    billing_state = models.CharField(max_length=16, choices=BillingState.choices, default=BillingState.CURRENT)
    notes = models.TextField(blank=True)

    class Meta:
        db_table = "licenses"
        verbose_name = "license"
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status"], name="idx_licenses_status"),
            # The expiry job only looks at licenses that can still expire.
            models.Index(
                fields=["expires_at"],
                name="idx_licenses_expiring",
                condition=Q(status__in=["active", "trial"], deleted_at__isnull=True),
            ),
            models.Index(
                fields=["organization", "status"], name="idx_licenses_org_live", condition=Q(deleted_at__isnull=True)
            ),
        ]

    def __str__(self):
        return self.license_key


class LicenseUsageLog(TimeStampedModel):
    """What one license consumed in one period (requests, tokens, cost)."""

    organization = models.ForeignKey("identity.Organization", on_delete=models.PROTECT, related_name="+")
    license = models.ForeignKey(License, on_delete=models.CASCADE, related_name="usage_logs")
    period_start = models.DateField()
    period_end = models.DateField()
    ai_requests_count = models.PositiveBigIntegerField(default=0)
    tokens_input = models.PositiveBigIntegerField(default=0)
    tokens_output = models.PositiveBigIntegerField(default=0)
    tokens_cached = models.PositiveBigIntegerField(default=0)
    calculated_cost = CostField()

    class Meta:
        db_table = "license_usage_log"
        verbose_name = "license usage period"
        ordering = ["-period_start"]
        indexes = [models.Index(fields=["period_start"], name="idx_usage_log_period")]
        constraints = [
            models.UniqueConstraint(
                fields=["license", "period_start", "period_end"], name="license_usage_log_one_per_period"
            ),
            models.CheckConstraint(condition=Q(period_end__gte=F("period_start")), name="usage_log_period_ordered"),
            models.CheckConstraint(condition=Q(calculated_cost__gte=0), name="usage_log_cost_non_negative"),
        ]

    def __str__(self):
        return f"{self.license_id} {self.period_start}..{self.period_end}"


class LicenseToken(TimeStampedModel):
    """A bearer token scoped to one license: installed software manages its own machine with it
    (``Authorization: License <token>``), without an organization API key. Only its hash is kept;
    the token itself is shown once, when it is created."""

    PREFIX = "clt_"  # noqa: S105 - what every token starts with, not a secret

    organization = models.ForeignKey("identity.Organization", on_delete=models.PROTECT, related_name="+")
    license = models.ForeignKey(License, on_delete=models.CASCADE, related_name="tokens")
    name = models.CharField(max_length=100)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    #: the first characters of the token, to tell tokens apart (not enough to use one)
    token_prefix = models.CharField(max_length=16, editable=False)
    created_by = models.ForeignKey("identity.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "license_tokens"
        verbose_name = "license token"
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["organization", "created_at"], name="idx_license_tokens_org")]

    def __str__(self):
        return f"{self.name} ({self.token_prefix}…)"
