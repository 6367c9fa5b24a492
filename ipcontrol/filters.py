"""Filtersets for IP control endpoints.

Foreign keys are filtered by id (``UUIDFilter``): no lookup query per request, and an id the
caller may not see simply matches nothing.
"""

import django_filters

from celaest.api.filters import ApiFilterSet

from .models import LicenseCollision, LicenseIpBinding, LicenseValidation


class LicenseIpBindingFilterSet(ApiFilterSet):
    license = django_filters.UUIDFilter(field_name="license_id")

    class Meta:
        model = LicenseIpBinding
        fields = {
            "is_active": ["exact"],
            "machine_id": ["exact"],
            "ip_address": ["exact"],
            "last_seen": ["gte", "lte"],
        }


class LicenseValidationFilterSet(ApiFilterSet):
    license = django_filters.UUIDFilter(field_name="license_id")
    ip_binding = django_filters.UUIDFilter(field_name="ip_binding_id")
    created_at = django_filters.IsoDateTimeFromToRangeFilter()

    class Meta:
        model = LicenseValidation
        fields = ["license", "ip_binding", "is_valid", "result_code", "ip_address", "machine_id", "created_at"]


class LicenseCollisionFilterSet(ApiFilterSet):
    license = django_filters.UUIDFilter(field_name="license_id")
    open = django_filters.BooleanFilter(field_name="resolved_at", lookup_expr="isnull", label="Unresolved only")
    detected_at = django_filters.IsoDateTimeFromToRangeFilter()

    class Meta:
        model = LicenseCollision
        fields = ["license", "severity", "collision_type", "open", "auto_resolved", "detected_at"]
