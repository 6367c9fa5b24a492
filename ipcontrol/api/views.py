"""IP control endpoints: where an organization's licenses are used, every validation attempt,
and the collisions (anomalous simultaneous use) detected on them. Read-only."""

from django.db.models import QuerySet
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema, extend_schema_view

from celaest.api.pagination import CreatedAtCursorPagination
from celaest.api.viewsets import ReadOnlyMixin, TenantViewSet
from ipcontrol import selectors
from ipcontrol.filters import LicenseCollisionFilterSet, LicenseIpBindingFilterSet, LicenseValidationFilterSet

from .serializers import LicenseCollisionSerializer, LicenseIpBindingSerializer, LicenseValidationSerializer


@extend_schema_view(
    list=extend_schema(summary="List machines bound to my organization's licenses"),
    retrieve=extend_schema(summary="Get a license machine binding"),
)
class LicenseIpBindingViewSet(TenantViewSet, ReadOnlyMixin):
    serializer_class = LicenseIpBindingSerializer
    scope_resource = "license-bindings"
    filterset_class = LicenseIpBindingFilterSet
    search_fields = ["machine_id", "hostname"]
    ordering_fields = ["last_seen", "first_seen", "activation_count"]
    ordering = ["-last_seen"]

    def scoped_queryset(self) -> QuerySet:
        return selectors.license_ip_binding_list()


@extend_schema_view(
    list=extend_schema(summary="List license validation attempts"),
    retrieve=extend_schema(summary="Get a license validation attempt"),
)
class LicenseValidationViewSet(TenantViewSet, ReadOnlyMixin):
    """Every validation attempt on my organization's licenses, newest first, paged by cursor."""

    serializer_class = LicenseValidationSerializer
    scope_resource = "license-validations"
    pagination_class = CreatedAtCursorPagination
    filterset_class = LicenseValidationFilterSet
    filter_backends = [DjangoFilterBackend]  # the cursor fixes the order

    def scoped_queryset(self) -> QuerySet:
        return selectors.license_validation_list()


@extend_schema_view(
    list=extend_schema(summary="List license collisions"),
    retrieve=extend_schema(summary="Get a license collision"),
)
class LicenseCollisionViewSet(TenantViewSet, ReadOnlyMixin):
    serializer_class = LicenseCollisionSerializer
    scope_resource = "license-collisions"
    filterset_class = LicenseCollisionFilterSet
    ordering_fields = ["detected_at", "last_seen_at"]
    ordering = ["-detected_at"]

    def scoped_queryset(self) -> QuerySet:
        return selectors.license_collision_list()
