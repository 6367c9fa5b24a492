"""Per-user security records (sessions, API keys), webhooks, system config and feature flags."""

import json
import logging
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from celaest import crypto
from celaest.db import ChangeAnnouncingManager, TimeStampedModel, UUIDModel

logger = logging.getLogger(__name__)


class UserSession(TimeStampedModel):
    """A login. ``session_token`` is a hash of the session key, never the key itself."""

    user = models.ForeignKey("identity.User", on_delete=models.CASCADE, related_name="sessions")
    session_token = models.CharField(max_length=128, unique=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=500, blank=True)
    device_info = models.JSONField(default=dict, blank=True)
    is_active = models.BooleanField(default=True)
    last_activity_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "user_sessions"
        ordering = ["-last_activity_at"]
        indexes = [
            models.Index(fields=["user", "expires_at"], name="idx_sessions_user_live", condition=Q(is_active=True)),
        ]

    def __str__(self):
        return f"{self.user_id} session"


#: how many model names a key's allow list may hold, and how long each may be
MAX_ALLOWED_MODELS = 100
MAX_MODEL_NAME_LENGTH = 100


def validate_allowed_models(value) -> None:
    """A key's ``allowed_models``: null, or a list of distinct, non-empty model names."""
    if value is None:
        return
    if not isinstance(value, list):
        raise ValidationError("A list of model names.", code="invalid")
    if len(value) > MAX_ALLOWED_MODELS:
        raise ValidationError(f"At most {MAX_ALLOWED_MODELS} models.", code="invalid")
    for name in value:
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_MODEL_NAME_LENGTH or name != name.strip():
            raise ValidationError(
                f"Model names are non-empty strings of at most {MAX_MODEL_NAME_LENGTH} characters, "
                "without surrounding spaces.",
                code="invalid",
            )
    if len(set(value)) != len(value):
        raise ValidationError("A model is listed twice.", code="invalid")


def _spend_limit_field(verbose_name: str) -> models.DecimalField:
    """A key's spend limit in USD; null: none."""
    return models.DecimalField(
        verbose_name, max_digits=14, decimal_places=4, null=True, blank=True, validators=[MinValueValidator(Decimal(0))]
    )


class UserApiKey(TimeStampedModel):
    """A personal API key. Only its SHA-256 hash is stored; ``key_prefix`` is for display."""

    user = models.ForeignKey("identity.User", on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=120)
    key_hash = models.CharField(max_length=128, unique=True)
    key_prefix = models.CharField(max_length=16)
    scopes = models.JSONField(default=list, blank=True)
    rate_limit_rpm = models.PositiveIntegerField(default=600)
    usage_count = models.PositiveBigIntegerField(default=0)
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_ip = models.GenericIPAddressField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # AI gateway limits of this key (operations.budgets); null: no limit of that kind.
    allowed_models = models.JSONField(
        null=True,
        blank=True,
        validators=[validate_allowed_models],
        help_text="Names of the AI models this key may call. Empty: every model.",
    )
    spend_limit_daily_usd = _spend_limit_field("spend limit per day (USD)")
    spend_limit_monthly_usd = _spend_limit_field("spend limit per month (USD)")
    tokens_per_minute = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(1_000_000_000)]
    )
    max_requests_in_flight = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(100_000)]
    )

    objects = ChangeAnnouncingManager()

    class Meta:
        db_table = "user_api_keys"
        verbose_name = "user API key"
        verbose_name_plural = "user API keys"
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["user"], name="idx_api_keys_user_live", condition=Q(revoked_at__isnull=True)),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(rate_limit_rpm__gte=1), name="api_keys_rpm_min_1"),
            models.CheckConstraint(
                condition=Q(spend_limit_daily_usd__gte=0) | Q(spend_limit_daily_usd__isnull=True),
                name="api_keys_daily_spend_non_negative",
            ),
            models.CheckConstraint(
                condition=Q(spend_limit_monthly_usd__gte=0) | Q(spend_limit_monthly_usd__isnull=True),
                name="api_keys_monthly_spend_non_negative",
            ),
            models.CheckConstraint(
                condition=Q(tokens_per_minute__gte=1) | Q(tokens_per_minute__isnull=True), name="api_keys_tpm_min_1"
            ),
            models.CheckConstraint(
                condition=Q(max_requests_in_flight__gte=1) | Q(max_requests_in_flight__isnull=True),
                name="api_keys_in_flight_min_1",
            ),
        ]

    def __str__(self):
        return f"{self.name} ({self.key_prefix}…)"

    @property
    def api_key_scopes(self) -> list[str]:
        """What the permission layer reads from ``request.auth`` to narrow a key's access."""
        return list(self.scopes or [])

    def is_usable(self, now) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


class Webhook(TimeStampedModel):
    """An outgoing webhook endpoint. The signing secret is stored encrypted; ``secret_hash``
    identifies it for display without revealing it."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        PAUSED = "paused", "Paused"
        DISABLED = "disabled", "Disabled"

    organization = models.ForeignKey("identity.Organization", on_delete=models.CASCADE, related_name="webhooks")
    user = models.ForeignKey("identity.User", on_delete=models.PROTECT, related_name="webhooks")
    name = models.CharField(max_length=120)
    url = models.URLField(max_length=2048)
    secret_encrypted = models.TextField()
    secret_hash = models.CharField(max_length=128)
    previous_secret_encrypted = models.TextField(blank=True)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    events = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    disabled_reason = models.CharField(max_length=255, blank=True)
    failing_since = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)

    objects = ChangeAnnouncingManager()

    class Meta:
        db_table = "webhooks"
        ordering = ["name"]
        indexes = [
            models.Index(fields=["organization"], name="idx_webhooks_org_active", condition=Q(status="active")),
        ]

    def __str__(self):
        return self.name


class WebhookDelivery(UUIDModel):
    """One attempt to deliver one event to one endpoint. ``event_id`` is shared by the
    attempts of one message (the Standard Webhooks ``webhook-id``)."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    organization = models.ForeignKey("identity.Organization", on_delete=models.CASCADE, related_name="+")
    event_id = models.CharField(max_length=64)
    event_type = models.CharField(max_length=100)
    payload = models.JSONField(default=dict)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempt_number = models.PositiveSmallIntegerField(default=1)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True)
    error = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        db_table = "webhook_deliveries"
        verbose_name_plural = "webhook deliveries"
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["webhook", "created_at"], name="idx_deliveries_webhook"),
            models.Index(fields=["organization", "created_at"], name="idx_deliveries_org_created"),
            models.Index(fields=["next_attempt_at"], name="idx_deliveries_due", condition=Q(status="pending")),
        ]
        constraints = [
            models.UniqueConstraint(fields=["event_id", "webhook", "attempt_number"], name="deliveries_attempt_unique"),
        ]

    def __str__(self):
        return f"{self.event_type} #{self.attempt_number}"


#: The one key of the JSON object that holds a sensitive system config value at rest.
SEALED_KEY = "$fernet"


def config_value_seal(value) -> dict:
    """``value`` (any JSON) encrypted as ``{"$fernet": "<token>"}``: still JSON, so the column
    stays ``jsonb`` as the ERD has it."""
    return {SEALED_KEY: crypto.encrypt(json.dumps(value))}


def config_value_is_sealed(stored) -> bool:
    return isinstance(stored, dict) and set(stored) == {SEALED_KEY} and isinstance(stored[SEALED_KEY], str)


def config_value_unseal(stored):
    """The value inside ``stored``; raises ``crypto.DecryptionError`` if no configured key opens it."""
    return json.loads(crypto.decrypt(stored[SEALED_KEY]))


class SystemConfigValueField(models.JSONField):
    """``system_config.value``: in Python always the value itself; in the database encrypted when
    the row is sensitive (``SystemConfig.from_db`` decrypts on the way back). Doing it in the
    field means every writer (services, admin, the ``config`` command, the demo loader, tests)
    stores sensitive values encrypted without having to remember to."""

    def pre_save(self, model_instance, add):
        value = super().pre_save(model_instance, add)
        if not model_instance.is_sensitive:
            return value
        if value is None:
            # A value no configured key could open reads as None; unless replaced, it is kept.
            return getattr(model_instance, "_unreadable_sealed_value", None)
        return config_value_seal(value)


class SystemConfig(models.Model):
    """A typed platform setting. Sensitive values are masked wherever they are shown and
    encrypted at rest (``FIELD_ENCRYPTION_KEYS``, like provider keys and webhook secrets); code
    reads ``value`` in clear either way.

    Writes that bypass ``save()`` (``QuerySet.update``, ``bulk_update``) store what they are given:
    change a sensitive value through ``save()``."""

    key = models.CharField(max_length=120, primary_key=True)
    value = SystemConfigValueField(null=True, blank=True)
    description = models.TextField(blank=True)
    is_sensitive = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey("identity.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    objects = ChangeAnnouncingManager()

    class Meta:
        db_table = "system_config"
        ordering = ["key"]
        verbose_name = "system config entry"
        verbose_name_plural = "system config"

    def __str__(self):
        return self.key

    def save(self, *args, update_fields=None, **kwargs):
        if update_fields is not None and "is_sensitive" in update_fields and "value" not in update_fields:
            # The stored form of the value follows the flag: encrypted when it turns sensitive,
            # in clear when it stops being.
            update_fields = [*update_fields, "value"]
        super().save(*args, update_fields=update_fields, **kwargs)

    @classmethod
    def from_db(cls, db, field_names, values):
        instance = super().from_db(db, field_names, values)
        loaded = instance.__dict__
        if loaded.get("is_sensitive") and config_value_is_sealed(loaded.get("value")):
            try:
                instance.value = config_value_unseal(instance.value)
            except crypto.DecryptionError:
                # One unreadable row must not take every setting down with it: it reads as unset,
                # and its ciphertext is written back unchanged unless a new value replaces it.
                logger.error("System config %s cannot be decrypted with FIELD_ENCRYPTION_KEYS.", instance.key)
                instance._unreadable_sealed_value = instance.value
                instance.value = None
        return instance


class FeatureFlag(TimeStampedModel):
    class TargetType(models.TextChoices):
        ALL = "all", "Everyone"
        PERCENTAGE = "percentage", "Percentage of subjects"
        ORGANIZATIONS = "organizations", "Listed organizations"
        USERS = "users", "Listed users"

    flag_key = models.SlugField(max_length=120, unique=True)
    description = models.TextField(blank=True)
    is_enabled = models.BooleanField(default=False)
    target_type = models.CharField(max_length=16, choices=TargetType.choices, default=TargetType.ALL)
    target_percentage = models.PositiveSmallIntegerField(default=0)
    target_ids = models.JSONField(default=list, blank=True, help_text="Organization or user ids targeted.")

    objects = ChangeAnnouncingManager()

    class Meta:
        db_table = "feature_flags"
        ordering = ["flag_key"]
        constraints = [
            models.CheckConstraint(
                condition=Q(target_percentage__gte=0, target_percentage__lte=100), name="flags_percentage_0_100"
            ),
        ]

    def __str__(self):
        return self.flag_key
