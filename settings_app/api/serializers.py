"""Serializers of the settings endpoints.

Secrets never leave in a response after creation: no session token, API key hash or webhook
secret is a field here; the raw API key and webhook secret appear once, in the create response.
"""

from decimal import Decimal

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from celaest.validation import json_problem
from settings_app.models import (
    MAX_ALLOWED_MODELS,
    MAX_MODEL_NAME_LENGTH,
    FeatureFlag,
    SystemConfig,
    UserApiKey,
    UserSession,
    Webhook,
    WebhookDelivery,
    validate_allowed_models,
)
from settings_app.selectors import api_scope_resources, user_session_is_current
from settings_app.services.config import CONFIG_KEY_RULE, config_key_is_valid
from settings_app.services.outbox import WEBHOOK_SUBSCRIBABLE

#: What a sensitive setting's value is replaced with in every response.
SENSITIVE_MASK = "••••••"


class UserSessionSerializer(serializers.ModelSerializer):
    is_current = serializers.SerializerMethodField()

    class Meta:
        model = UserSession
        fields = [
            "id", "ip_address", "user_agent", "device_info", "is_active", "is_current", "last_activity_at",
            "expires_at", "revoked_at", "created_at",
        ]  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(serializers.BooleanField())
    def get_is_current(self, session: UserSession) -> bool:
        request = self.context.get("request")
        django_session = getattr(request, "session", None) if request is not None else None
        session_key = getattr(django_session, "session_key", None)
        return user_session_is_current(session=session, session_key=session_key)


class EvaluatedFlagsSerializer(serializers.Serializer):
    flags = serializers.DictField(child=serializers.BooleanField(), help_text="Flag key: on for me or not.")


class SessionsRevokedSerializer(serializers.Serializer):
    revoked = serializers.IntegerField(help_text="Sessions revoked.")


#: what an API key may be limited to on the AI gateway (operations.budgets), editable
API_KEY_LIMIT_FIELDS = [
    "allowed_models", "spend_limit_daily_usd", "spend_limit_monthly_usd", "tokens_per_minute",
    "max_requests_in_flight",
]  # fmt: skip


class ApiKeySerializer(serializers.ModelSerializer):
    class Meta:
        model = UserApiKey
        fields = [
            "id", "name", "key_prefix", "scopes", "rate_limit_rpm", *API_KEY_LIMIT_FIELDS, "usage_count",
            "last_used_at", "expires_at", "revoked_at", "created_at",
        ]  # fmt: skip
        read_only_fields = fields


class StrictCharField(serializers.CharField):
    """A string, and only a string (``CharField`` takes 7 for "7")."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class ApiKeyLimitFields(serializers.Serializer):
    """A key's AI gateway limits (null: no limit of that kind), as created and as changed."""

    allowed_models = serializers.ListField(
        child=StrictCharField(max_length=MAX_MODEL_NAME_LENGTH, trim_whitespace=False),
        max_length=MAX_ALLOWED_MODELS,
        allow_null=True,
        required=False,
        help_text="Names of the AI models this key may call. Null or empty: every model.",
    )
    spend_limit_daily_usd = serializers.DecimalField(
        max_digits=14, decimal_places=4, min_value=Decimal("0"), allow_null=True, required=False
    )
    spend_limit_monthly_usd = serializers.DecimalField(
        max_digits=14, decimal_places=4, min_value=Decimal("0"), allow_null=True, required=False
    )
    tokens_per_minute = serializers.IntegerField(min_value=1, max_value=1_000_000_000, allow_null=True, required=False)
    max_requests_in_flight = serializers.IntegerField(min_value=1, max_value=100_000, allow_null=True, required=False)

    def validate_allowed_models(self, value):
        try:
            validate_allowed_models(value)
        except DjangoValidationError as error:
            raise serializers.ValidationError(error.messages) from error
        return value


class ApiKeyUpdateSerializer(ApiKeyLimitFields):
    name = serializers.CharField(max_length=120, required=False)


class ApiKeyCreateSerializer(ApiKeyLimitFields):
    name = serializers.CharField(max_length=120)
    scopes = serializers.ListField(
        child=serializers.CharField(max_length=120),
        required=False,
        help_text="'*' or '<resource>:read' / '<resource>:write' (write implies read). Default: ['*'].",
    )
    expires_in_days = serializers.IntegerField(min_value=1, max_value=3650, required=False, allow_null=True)
    rate_limit_rpm = serializers.IntegerField(min_value=1, max_value=100_000, required=False)

    def validate_scopes(self, scopes: list[str]) -> list[str]:
        known = api_scope_resources()
        errors = []
        for scope in scopes:
            scope = scope.strip()
            if scope == "*":
                continue
            resource, _, access = scope.partition(":")
            if access not in ("read", "write"):
                errors.append(f"Invalid scope {scope!r}: use '*' or '<resource>:read' / '<resource>:write'.")
            elif resource not in known:
                errors.append(f"Unknown resource in scope {scope!r}.")
        if errors:
            raise serializers.ValidationError(errors)
        return [scope.strip() for scope in scopes]


class ApiKeyCreatedSerializer(ApiKeySerializer):
    key = serializers.CharField(read_only=True, help_text="The API key. Shown this once: store it now.")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]
        read_only_fields = fields


class WebhookSerializer(serializers.ModelSerializer):
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=WEBHOOK_SUBSCRIBABLE),
        allow_empty=False,
        help_text="Event types to deliver; '*' for every event.",
    )

    class Meta:
        model = Webhook
        fields = [
            "id", "name", "url", "events", "status", "disabled_reason", "failing_since", "last_success_at",
            "user", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["id", "disabled_reason", "failing_since", "last_success_at", "user", "created_at",
                            "updated_at"]  # fmt: skip


class WebhookCreatedSerializer(WebhookSerializer):
    # A plain string here: a second component carrying the status choices would make the
    # schema's enum naming ambiguous. Webhook documents the choices.
    status = serializers.CharField(read_only=True)
    secret = serializers.CharField(
        read_only=True, help_text="The signing secret (whsec_...). Shown this once: store it now."
    )

    class Meta(WebhookSerializer.Meta):
        fields = [*WebhookSerializer.Meta.fields, "secret"]


class WebhookDeliverySerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookDelivery
        fields = [
            "id", "webhook", "event_id", "event_type", "payload", "status", "attempt_number", "response_status",
            "response_body", "error", "duration_ms", "next_attempt_at", "delivered_at", "created_at",
        ]  # fmt: skip
        read_only_fields = fields


class WebhookSecretRotateSerializer(serializers.Serializer):
    grace_hours = serializers.IntegerField(
        min_value=0,
        max_value=7 * 24,
        default=24,
        help_text="Hours during which deliveries are signed with both the new and the old secret.",
    )


class WebhookSecretRotatedSerializer(serializers.Serializer):
    secret = serializers.CharField(help_text="The new signing secret (whsec_...). Shown this once: store it now.")
    previous_secret_expires_at = serializers.DateTimeField(allow_null=True)


class WebhookRecoverSerializer(serializers.Serializer):
    since = serializers.DateTimeField(help_text="Send again every event whose attempts since then all failed.")


class WebhookRecoveredSerializer(serializers.Serializer):
    queued = serializers.IntegerField(help_text="Events queued for delivery again.")


class SystemConfigSerializer(serializers.ModelSerializer):
    """A platform setting. A sensitive value is always shown masked; on update, leaving out
    ``value`` (or sending the mask back) keeps the stored value."""

    value = serializers.JSONField(
        required=False, allow_null=True, help_text=f'Any JSON value; "{SENSITIVE_MASK}" when sensitive.'
    )

    class Meta:
        model = SystemConfig
        fields = ["key", "value", "description", "is_sensitive", "updated_at", "updated_by"]
        read_only_fields = ["updated_at", "updated_by"]

    def get_fields(self):
        fields = super().get_fields()
        if self.instance is not None and not isinstance(self.instance, list | tuple):
            fields["key"].read_only = True  # the key is the identity of the setting
        return fields

    def validate_value(self, value):
        if problem := json_problem(value):  # e.g. U+0000, which PostgreSQL's jsonb cannot store
            raise serializers.ValidationError(problem)
        return value

    def validate_key(self, key: str) -> str:
        if not config_key_is_valid(key):
            raise serializers.ValidationError(CONFIG_KEY_RULE)
        return key

    def to_representation(self, instance: SystemConfig):
        data = super().to_representation(instance)
        if instance.is_sensitive:
            data["value"] = SENSITIVE_MASK
        return data


class FeatureFlagSerializer(serializers.ModelSerializer):
    target_ids = serializers.ListField(
        child=serializers.UUIDField(), required=False, help_text="Organization or user ids targeted."
    )

    class Meta:
        model = FeatureFlag
        fields = [
            "id", "flag_key", "description", "is_enabled", "target_type", "target_percentage", "target_ids",
            "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["id", "created_at", "updated_at"]
        extra_kwargs = {"target_percentage": {"min_value": 0, "max_value": 100}}

    def validate_target_ids(self, value) -> list[str]:
        return sorted({str(target) for target in value})  # stored as JSON strings
