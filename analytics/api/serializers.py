"""Serializers of the analytics endpoints: ROI metrics and telemetry events (read-only here)."""

from rest_framework import serializers

from analytics.models import RoiMetric, TelemetryEvent


class RoiMetricSerializer(serializers.ModelSerializer):
    class Meta:
        model = RoiMetric
        fields = [
            "id", "period_type", "period_start", "tasks_completed", "tasks_failed", "time_saved_minutes",
            "money_saved", "currency", "ai_cost_usd", "tokens_input", "tokens_output",
            "avg_execution_time_ms", "active_users_count", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields


class TelemetryEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = TelemetryEvent
        fields = [
            "id", "user", "event_type", "event_name", "properties", "page_url", "device_type",
            "session_id", "occurred_at", "created_at",
        ]  # fmt: skip
        read_only_fields = fields


class TelemetryEventInSerializer(serializers.ModelSerializer):
    """One incoming event; organization and user come from the caller, never the payload."""

    event_type = serializers.RegexField(r"^[a-z0-9_.:-]{1,64}$", max_length=64)
    event_name = serializers.CharField(max_length=200)
    properties = serializers.DictField(required=False, default=dict)

    class Meta:
        model = TelemetryEvent
        fields = ["event_type", "event_name", "properties", "page_url", "device_type", "session_id", "occurred_at"]
        extra_kwargs = {"page_url": {"required": False}, "device_type": {"required": False}}

    def validate_properties(self, value):
        import json

        if len(json.dumps(value)) > 8192:
            raise serializers.ValidationError("Properties are limited to 8 KB of JSON.")
        return value


class TelemetryBatchSerializer(serializers.Serializer):
    events = TelemetryEventInSerializer(many=True, allow_empty=False, max_length=500)


class TelemetryBatchResultSerializer(serializers.Serializer):
    accepted = serializers.IntegerField()


class RoiPeriodFiguresSerializer(serializers.Serializer):
    period_start = serializers.DateField()
    tasks_completed = serializers.IntegerField()
    time_saved_minutes = serializers.DecimalField(max_digits=14, decimal_places=2)
    money_saved = serializers.DecimalField(max_digits=14, decimal_places=4)
    ai_cost_usd = serializers.DecimalField(max_digits=18, decimal_places=8)
    active_users_count = serializers.IntegerField()


class RoiChangeSerializer(serializers.Serializer):
    tasks_completed = serializers.DecimalField(max_digits=12, decimal_places=1, allow_null=True)
    time_saved_minutes = serializers.DecimalField(max_digits=12, decimal_places=1, allow_null=True)
    money_saved = serializers.DecimalField(max_digits=12, decimal_places=1, allow_null=True)
    ai_cost_usd = serializers.DecimalField(max_digits=12, decimal_places=1, allow_null=True)
    active_users_count = serializers.DecimalField(max_digits=12, decimal_places=1, allow_null=True)


class RoiSummarySerializer(serializers.Serializer):
    currency = serializers.CharField()
    this_month = RoiPeriodFiguresSerializer()
    last_month = RoiPeriodFiguresSerializer()
    change_percent = RoiChangeSerializer(help_text="Percent change against last month; null when last month was 0.")
