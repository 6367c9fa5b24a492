"""Licensing endpoints: the plan catalogue (staff write), and each organization's licenses and
their usage (read-only here; issuing and changing licenses are service operations)."""

from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework.filters import OrderingFilter

from celaest.api.viewsets import CatalogViewSet, CrudMixin, DatabaseConflictsMixin, ReadOnlyMixin, TenantViewSet
from licensing.filters import LicenseFilterSet, LicenseUsageLogFilterSet, SubscriptionPlanFilterSet
from licensing.models import License, LicenseUsageLog, SubscriptionPlan

from .serializers import LicenseSerializer, LicenseUsageLogSerializer, SubscriptionPlanSerializer


@extend_schema_view(
    list=extend_schema(summary="List subscription plans"),
    retrieve=extend_schema(summary="Get a subscription plan"),
    create=extend_schema(summary="Create a subscription plan (staff)"),
    update=extend_schema(summary="Replace a subscription plan (staff)"),
    partial_update=extend_schema(summary="Update a subscription plan (staff)"),
    destroy=extend_schema(summary="Delete an unused subscription plan (staff)"),
)
class SubscriptionPlanViewSet(DatabaseConflictsMixin, CatalogViewSet, CrudMixin):
    """Customers see the plans on sale; staff see and manage every plan."""

    serializer_class = SubscriptionPlanSerializer
    scope_resource = "plans"
    filterset_class = SubscriptionPlanFilterSet
    search_fields = ["code", "name"]
    ordering_fields = ["sort_order", "price_monthly", "price_yearly", "name", "created_at"]
    ordering = ["sort_order", "price_monthly"]
    in_use_message = "Licenses were issued under this plan; deactivate it instead of deleting it."

    def scoped_queryset(self):
        return SubscriptionPlan.objects.all()

    def visible_to_customers(self, queryset):
        return queryset.filter(is_active=True)


@extend_schema_view(
    list=extend_schema(summary="List my organization's licenses"),
    retrieve=extend_schema(summary="Get a license with its effective limits"),
)
class LicenseViewSet(TenantViewSet, ReadOnlyMixin):
    serializer_class = LicenseSerializer
    scope_resource = "licenses"
    filterset_class = LicenseFilterSet
    search_fields = ["license_key"]
    ordering_fields = ["created_at", "expires_at", "status", "issued_at"]
    ordering = ["-created_at"]

    def scoped_queryset(self):
        return License.objects.select_related("plan")


@extend_schema_view(
    list=extend_schema(summary="List usage periods of my organization's licenses"),
    retrieve=extend_schema(summary="Get one usage period of a license"),
)
class LicenseUsageLogViewSet(TenantViewSet, ReadOnlyMixin):
    serializer_class = LicenseUsageLogSerializer
    scope_resource = "license-usage"
    filterset_class = LicenseUsageLogFilterSet
    # Nothing here is free text: no search parameter.
    filter_backends = [DjangoFilterBackend, OrderingFilter]
    ordering_fields = ["period_start", "period_end", "ai_requests_count", "calculated_cost"]
    ordering = ["-period_start"]

    def scoped_queryset(self):
        return LicenseUsageLog.objects.all()
