"""Filtersets for settings endpoints.

Foreign keys are filtered by id (``UUIDFilter``): no lookup query per request, and an id the
caller may not see simply matches nothing.
"""

import django_filters

from celaest.api.filters import ApiFilterSet

from .models import FeatureFlag, SystemConfig, UserApiKey, UserSession, Webhook, WebhookDelivery


class UserSessionFilterSet(ApiFilterSet):
    class Meta:
        model = UserSession
        fields = {"is_active": ["exact"], "expires_at": ["gte", "lte"]}


class UserApiKeyFilterSet(ApiFilterSet):
    revoked = django_filters.BooleanFilter(field_name="revoked_at", lookup_expr="isnull", exclude=True)

    class Meta:
        model = UserApiKey
        fields = ["revoked"]


class WebhookFilterSet(ApiFilterSet):
    class Meta:
        model = Webhook
        fields = {"status": ["exact"]}


class WebhookDeliveryFilterSet(ApiFilterSet):
    webhook = django_filters.UUIDFilter(field_name="webhook_id")
    created_at = django_filters.IsoDateTimeFromToRangeFilter()

    class Meta:
        model = WebhookDelivery
        fields = ["webhook", "event_type", "event_id", "status", "created_at"]


class SystemConfigFilterSet(ApiFilterSet):
    class Meta:
        model = SystemConfig
        fields = {"key": ["exact", "startswith"], "is_sensitive": ["exact"]}


class FeatureFlagFilterSet(ApiFilterSet):
    class Meta:
        model = FeatureFlag
        fields = {"flag_key": ["exact"], "is_enabled": ["exact"], "target_type": ["exact"]}
