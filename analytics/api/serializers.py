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
