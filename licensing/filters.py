"""Filtersets for licensing endpoints.

Foreign keys are filtered by id (``UUIDFilter``) rather than ``ModelChoiceFilter``: no lookup
query per request, and an id of another organization's row simply matches nothing.
"""

import django_filters

from celaest.api.filters import ApiFilterSet

from .models import License, LicenseUsageLog, SubscriptionPlan


class SubscriptionPlanFilterSet(ApiFilterSet):
    class Meta:
        model = SubscriptionPlan
        fields = {"code": ["exact"], "is_active": ["exact"], "currency": ["exact"]}


class LicenseFilterSet(ApiFilterSet):
    plan = django_filters.UUIDFilter(field_name="plan_id")
    plan_code = django_filters.CharFilter(field_name="plan__code")

    class Meta:
        model = License
        fields = {"status": ["exact", "in"], "expires_at": ["gte", "lte", "isnull"]}


class LicenseUsageLogFilterSet(ApiFilterSet):
    license = django_filters.UUIDFilter(field_name="license_id")

    class Meta:
        model = LicenseUsageLog
        fields = {"period_start": ["exact", "gte", "lte"], "period_end": ["exact", "gte", "lte"]}
