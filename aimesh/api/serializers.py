"""Serializers of the AI mesh endpoints: models, prompts and the (staff-only) provider key pool."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.fields import empty

from aimesh.models import AIApiKey, AIModel, Prompt, Provider
from celaest import crypto

_KEY_HINT_LENGTH = 4


@extend_schema_field({"type": "string", "enum": Provider.values}, component_name="AIProviderEnum")
class ProviderField(serializers.ChoiceField):
    """An AI provider. Named in the schema once (``AIProviderEnum``): several components carry it
    and other apps have ``provider`` fields of their own, so the generated name would collide."""

    def __init__(self, **kwargs):
        super().__init__(choices=Provider.choices, **kwargs)


class AIModelSerializer(serializers.ModelSerializer):
    provider = ProviderField()

    class Meta:
        model = AIModel
        fields = [
            "id", "provider", "model_id", "display_name", "capabilities", "max_tokens_input",
            "max_tokens_output", "cost_per_1k_input", "cost_per_1k_output", "cost_per_1k_cached_input",
            "is_default", "is_active", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["id", "created_at", "updated_at"]
        extra_kwargs = {
            "cost_per_1k_input": {"min_value": 0},
            "cost_per_1k_output": {"min_value": 0},
            "cost_per_1k_cached_input": {"min_value": 0},
            "max_tokens_input": {"min_value": 1},
            "max_tokens_output": {"min_value": 1},
        }

    def validate_capabilities(self, value):
        if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
            raise serializers.ValidationError('Expected a list of capability names, e.g. ["chat", "json"].')
        return value


class PromptSerializer(serializers.ModelSerializer):
    class Meta:
        model = Prompt
        fields = [
            "id", "slug", "name", "category", "description", "system_prompt", "user_template",
            "variables", "preferred_model", "response_format", "temperature", "max_output_tokens",
            "minutes_saved_estimate", "version", "is_active", "parent", "created_by", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["id", "created_by", "created_at", "updated_at"]
        extra_kwargs = {
            "temperature": {"min_value": 0, "max_value": 2},
            "version": {"min_value": 1},
            "max_output_tokens": {"min_value": 1},
            "minutes_saved_estimate": {"min_value": 0},
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance is not None:
            # DRF gives the fields of a unique constraint their model default; on a full update
            # (PUT) that would silently renumber or deactivate a version that omits them.
            for name in ("version", "is_active"):
                self.fields[name].default = empty

    def validate_variables(self, value):
        if not isinstance(value, list):
            raise serializers.ValidationError("Expected a list of variable declarations.")
        for declaration in value:
            if not isinstance(declaration, dict) or not isinstance(declaration.get("name"), str):
                raise serializers.ValidationError('Each variable is an object with a "name", e.g. {"name": "text"}.')
        return value

    def validate(self, attrs):
        parent = attrs.get("parent", getattr(self.instance, "parent", None))
        slug = attrs.get("slug", getattr(self.instance, "slug", None))
        if parent is not None:
            if self.instance is not None and parent.pk == self.instance.pk:
                raise serializers.ValidationError({"parent": ["A version cannot be its own parent."]})
            if parent.slug != slug:
                raise serializers.ValidationError({"parent": ["The parent must be a version of the same prompt."]})
        return attrs


class AIApiKeySerializer(serializers.ModelSerializer):
    """A pooled provider key. ``api_key`` is accepted on write only and stored encrypted; the
    responses carry only ``key_hint`` (its last characters)."""

    provider = ProviderField()
    api_key = serializers.CharField(
        write_only=True,
        trim_whitespace=True,
        min_length=8,
        max_length=1000,
        help_text="The provider's secret key. Write-only: stored encrypted and never returned.",
    )

    class Meta:
        model = AIApiKey
        fields = [
            "id", "provider", "key_name", "api_key", "key_hint", "base_url", "is_active", "is_healthy",
            "rate_limit_rpm", "usage_count", "priority", "consecutive_failures", "cooldown_until",
            "last_used_at", "last_checked_at", "last_error", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = [
            "id", "key_hint", "usage_count", "consecutive_failures", "cooldown_until", "last_used_at",
            "last_checked_at", "last_error", "created_at", "updated_at",
        ]  # fmt: skip
        extra_kwargs = {"rate_limit_rpm": {"min_value": 1}}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance is not None:
            # Replacing the secret is optional when changing the rest of a key.
            self.fields["api_key"].required = False

    def _encrypt(self, validated_data: dict) -> dict:
        raw_key = validated_data.pop("api_key", None)
        if raw_key is not None:
            validated_data["key_encrypted"] = crypto.encrypt(raw_key)
            validated_data["key_hint"] = raw_key[-_KEY_HINT_LENGTH:]
        return validated_data

    def create(self, validated_data):
        return super().create(self._encrypt(validated_data))

    def update(self, instance, validated_data):
        return super().update(instance, self._encrypt(validated_data))
