"""Filtersets for audit endpoints."""

import django_filters

from celaest.api.filters import ApiFilterSet

from .models import AuditLog, SystemEvent


class AuditLogFilterSet(ApiFilterSet):
    user = django_filters.UUIDFilter(field_name="user_id")
    # Only narrows what the caller may already see: customers are scoped to their own organization.
    organization = django_filters.UUIDFilter(field_name="organization_id")

    class Meta:
        model = AuditLog
        fields = {
            "action": ["exact", "in"],
            "resource_type": ["exact"],
            "resource_id": ["exact"],
            "source": ["exact"],
            "created_at": ["gte", "lte"],
        }


class SystemEventFilterSet(ApiFilterSet):
    organization = django_filters.UUIDFilter(field_name="organization_id")

    class Meta:
        model = SystemEvent
        fields = {
            "event_type": ["exact"],
            "severity": ["exact", "in"],
            "source": ["exact"],
            "created_at": ["gte", "lte"],
        }
