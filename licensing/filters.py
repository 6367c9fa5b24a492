"""Filtersets for licensing endpoints.

Foreign keys are filtered by id (``UUIDFilter``) rather than ``ModelChoiceFilter``: no lookup
query per request, and an id of another organization's row simply matches nothing.
"""

from datetime import UTC, timedelta

import django_filters
from django.core.exceptions import ValidationError
from django.db import models

from .models import License, LicenseUsageLog, SubscriptionPlan

_MAX_OFFSET = timedelta(hours=15, minutes=59)  # the widest UTC offset PostgreSQL accepts


def _utc(value):
    """The time in UTC; an offset no database accepts is the caller's error (a 400)."""
    if value is None or value.tzinfo is None:
        return value
    if abs(value.utcoffset()) > _MAX_OFFSET:
        raise ValidationError("UTC offsets range from -15:59 to +15:59.")
    return value.astimezone(UTC)


class UtcIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    """An ISO 8601 time sent to the database in UTC. Python accepts offsets up to ±23:59 and
    PostgreSQL only up to ±15:59: wider ones are refused with a 400, not a server error."""

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
