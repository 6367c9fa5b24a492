"""Filtersets for licensing endpoints.

Foreign keys are filtered by id (``UUIDFilter``) rather than ``ModelChoiceFilter``: no lookup
query per request, and an id of another organization's row simply matches nothing.
"""

from datetime import UTC

import django_filters
from django.db import models

from .models import License, LicenseUsageLog, SubscriptionPlan


def _utc(value):
    return value.astimezone(UTC) if value is not None and value.tzinfo is not None else value


class UtcIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    """An ISO 8601 time with any offset Python accepts (up to ±23:59); the database accepts less,
    so the value is sent in UTC rather than turned into a server error."""

    def filter(self, qs, value):
        return super().filter(qs, _utc(value))


class UtcIsoDateTimeFromToRangeFilter(django_filters.IsoDateTimeFromToRangeFilter):
    def filter(self, qs, value):
        if value:
            value = slice(_utc(value.start), _utc(value.stop))
        return super().filter(qs, value)


UTC_DATETIME_OVERRIDES = {models.DateTimeField: {"filter_class": UtcIsoDateTimeFilter}}


class SubscriptionPlanFilterSet(django_filters.FilterSet):
    class Meta:
        model = SubscriptionPlan
        fields = {"code": ["exact"], "is_active": ["exact"], "currency": ["exact"]}


class LicenseFilterSet(django_filters.FilterSet):
    plan = django_filters.UUIDFilter(field_name="plan_id")
    plan_code = django_filters.CharFilter(field_name="plan__code")

    class Meta:
        model = License
        fields = {"status": ["exact", "in"], "expires_at": ["gte", "lte", "isnull"]}
        filter_overrides = UTC_DATETIME_OVERRIDES


class LicenseUsageLogFilterSet(django_filters.FilterSet):
    license = django_filters.UUIDFilter(field_name="license_id")

    class Meta:
        model = LicenseUsageLog
        fields = {"period_start": ["exact", "gte", "lte"], "period_end": ["exact", "gte", "lte"]}
