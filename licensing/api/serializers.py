"""Serializers of the licensing endpoints: the plan catalogue, licenses and their usage."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from identity.models import Organization
from licensing.models import License, LicenseToken, LicenseUsageLog, MachineScheme, SubscriptionPlan
from licensing.selectors import PLAN_LIMIT_KEYS, license_effective_limits, license_policy


def validate_limits(value):
    """Plan limits and license custom limits: known keys, each a non-negative integer or null."""
    if not isinstance(value, dict):
        raise serializers.ValidationError("Expected an object of limits.")
    errors = []
    for key, limit in value.items():
        if key not in PLAN_LIMIT_KEYS:
            errors.append(f"Unknown limit {key!r}; use one of {sorted(PLAN_LIMIT_KEYS)}.")
        elif limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
            errors.append(f"{key} must be a non-negative integer, or null for unlimited.")
    if errors:
        raise serializers.ValidationError(errors)
    return value


class SubscriptionPlanSerializer(serializers.ModelSerializer):
    class Meta:
        model = SubscriptionPlan
        fields = [
            "id", "code", "name", "description", "price_monthly", "price_yearly", "currency",
            "limits", "features", "machine_scheme", "overage_allowance", "heartbeat_window_seconds", "is_active",
            "sort_order", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["id", "created_at", "updated_at"]
        extra_kwargs = {
            "price_monthly": {"min_value": 0},
            "price_yearly": {"min_value": 0},
        }

    def validate_currency(self, value: str) -> str:
        if len(value) != 3 or not value.isalpha():
            raise serializers.ValidationError("Use a three-letter ISO 4217 code.")
        return value.upper()

    def validate_limits(self, value):
        return validate_limits(value)

    def validate_features(self, value):
        return validate_entitlements(value)


def validate_entitlements(value):
    """A plan's features or a license's extra entitlements: a list of non-blank codes."""
    if not isinstance(value, list) or not all(isinstance(code, str) and code.strip() for code in value):
        raise serializers.ValidationError("Expected a list of entitlement codes.")
    if any(len(code) > 64 for code in value) or len(value) > 200:
        raise serializers.ValidationError("At most 200 codes of at most 64 characters.")
    return value


class LicensePolicySerializer(serializers.Serializer):
    machine_scheme = serializers.ChoiceField(choices=MachineScheme.choices)
    max_machines = serializers.IntegerField(allow_null=True)
    machine_ceiling = serializers.IntegerField(allow_null=True, help_text="max_machines with the overage allowance.")
    overage_allowance = serializers.IntegerField(help_text="Percent of max_machines admitted (100: no overage).")
    heartbeat_window_seconds = serializers.IntegerField(allow_null=True)
    entitlements = serializers.ListField(child=serializers.CharField())


class PlanSummarySerializer(serializers.ModelSerializer):
    class Meta:
        model = SubscriptionPlan
        fields = ["id", "code", "name"]
        read_only_fields = fields


class LicenseSerializer(serializers.ModelSerializer):
    """A license as its organization sees it. The key is theirs, so it is shown."""

    plan = PlanSummarySerializer(read_only=True)
    effective_limits = serializers.SerializerMethodField()
    policy = serializers.SerializerMethodField()

    class Meta:
        model = License
        fields = [
            "id", "license_key", "plan", "status", "status_reason", "issued_at", "expires_at",
            "suspended_at", "revoked_at", "ai_requests_used", "organization", "custom_limits", "effective_limits",
            "machine_scheme", "overage_allowance", "heartbeat_window_seconds", "entitlements", "policy",
            "billing_state", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(serializers.DictField(child=serializers.IntegerField(allow_null=True)))
    def get_effective_limits(self, license: License) -> dict:
        return license_effective_limits(license=license)

    @extend_schema_field(LicensePolicySerializer)
    def get_policy(self, license: License) -> dict:
        """The policy in force: the plan's, overridden by the license's own fields."""
        return LicensePolicySerializer(license_policy(license=license)).data


class LicensePolicyUpdateSerializer(serializers.ModelSerializer):
    """Staff override the plan's machine policy for one license (null: the plan's)."""

    class Meta:
        model = License
        fields = ["machine_scheme", "overage_allowance", "heartbeat_window_seconds", "entitlements"]

    def validate_entitlements(self, value):
        return validate_entitlements(value)


class LicenseUsageLogSerializer(serializers.ModelSerializer):
    class Meta:
        model = LicenseUsageLog
        fields = [
            "id", "license", "period_start", "period_end", "ai_requests_count", "tokens_input",
            "tokens_output", "tokens_cached", "calculated_cost", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields


class LicenseIssueSerializer(serializers.Serializer):
    """Staff issue a license to an organization (by slug) under a plan (by code)."""

    organization = serializers.SlugRelatedField(slug_field="slug", queryset=Organization.objects.all())
    plan = serializers.SlugRelatedField(slug_field="code", queryset=SubscriptionPlan.objects.all())
    status = serializers.ChoiceField(choices=[License.Status.ACTIVE, License.Status.TRIAL], default="active")
    expires_in_days = serializers.IntegerField(min_value=1, max_value=36500, required=False, allow_null=True)
    custom_limits = serializers.JSONField(required=False, default=dict)

    def validate_custom_limits(self, value):
        return validate_limits(value)


class LicenseReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")


class LicenseRenewSerializer(serializers.Serializer):
    """Either ``days`` (added to the current expiry, or to now if it has passed) or ``expires_at``."""

    days = serializers.IntegerField(min_value=1, max_value=36500, required=False)
    expires_at = serializers.DateTimeField(required=False)

    def validate(self, attrs):
        if ("days" in attrs) == ("expires_at" in attrs):
            raise serializers.ValidationError("Give either days or expires_at.")
        return attrs


class LicenseTokenSerializer(serializers.ModelSerializer):
    """A license token as its organization sees it: never the token itself (only at creation)."""

    class Meta:
        model = LicenseToken
        fields = [
            "id", "license", "name", "token_prefix", "expires_at", "revoked_at", "last_used_at", "created_by",
            "created_at",
        ]  # fmt: skip
        read_only_fields = fields


class LicenseTokenCreateSerializer(serializers.Serializer):
    """A license of the caller's organization (by id), a name, and optionally a lifetime."""

    license = serializers.PrimaryKeyRelatedField(queryset=License.objects.none())
    name = serializers.CharField(max_length=100)
    expires_in_days = serializers.IntegerField(min_value=1, max_value=3650, required=False, allow_null=True)

    def __init__(self, *args, organization=None, **kwargs):
        super().__init__(*args, **kwargs)
        # Another organization's license is as absent as one that does not exist.
        self.fields["license"].queryset = License.objects.filter(organization=organization)


class LicenseTokenCreatedSerializer(LicenseTokenSerializer):
    token = serializers.CharField(read_only=True, help_text="Shown once: only its hash is kept.")

    class Meta(LicenseTokenSerializer.Meta):
        fields = [*LicenseTokenSerializer.Meta.fields, "token"]
        read_only_fields = fields
