"""Filtersets for analytics endpoints."""

import django_filters

from celaest.api.filters import ApiFilterSet

from .models import RoiMetric, TelemetryEvent


class RoiMetricFilterSet(ApiFilterSet):
    class Meta:
        model = RoiMetric
        fields = {"period_type": ["exact"], "period_start": ["exact", "gte", "lte"]}


class TelemetryEventFilterSet(ApiFilterSet):
    user = django_filters.UUIDFilter(field_name="user_id")

    class Meta:
        model = TelemetryEvent
        fields = {
            "event_type": ["exact"],
            "event_name": ["exact"],
            "device_type": ["exact"],
            "session_id": ["exact"],
            "created_at": ["gte", "lte"],
        }
