"""IP control endpoints: where an organization's licenses are used (machines its owners and
admins rename and deactivate), every validation attempt, and the collisions (anomalous
simultaneous use) detected on them."""

from django.db.models import QuerySet
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from celaest.api import permissions as perms
from celaest.api.pagination import CreatedAtCursorPagination
from celaest.api.views import ApiView
from celaest.api.viewsets import ReadOnlyMixin, TenantViewSet
from celaest.errors import Conflict
from celaest.net import client_ip
from ipcontrol import selectors
from ipcontrol.collisions import collision_resolve
from ipcontrol.filters import LicenseCollisionFilterSet, LicenseIpBindingFilterSet, LicenseValidationFilterSet
from ipcontrol.models import LicenseIpBinding
from ipcontrol.offline import offline_activation
from ipcontrol.services import binding_deactivate, binding_rename

from .serializers import (
    CollisionResolveSerializer,
    LicenseCollisionSerializer,
    LicenseIpBindingSerializer,
    LicenseValidationSerializer,
    OfflineActivationRequestSerializer,
    SignedDocumentSerializer,
)


@extend_schema_view(
    list=extend_schema(summary="List machines bound to my organization's licenses"),
    retrieve=extend_schema(summary="Get a license machine binding"),
    update=extend_schema(summary="Rename a machine (owners and admins)"),
    partial_update=extend_schema(summary="Rename a machine (owners and admins)"),
)
class LicenseIpBindingViewSet(TenantViewSet, ReadOnlyMixin, mixins.UpdateModelMixin):
    """Every member sees the organization's machines; owners and admins rename them and free
    their seats."""

    serializer_class = LicenseIpBindingSerializer
    scope_resource = "license-bindings"
    write_roles = perms.MANAGER_ROLES
    filterset_class = LicenseIpBindingFilterSet
    search_fields = ["machine_id", "hostname", "name"]
    ordering_fields = ["last_seen", "first_seen", "activation_count"]
    ordering = ["-last_seen"]

    def scoped_queryset(self) -> QuerySet:
        return selectors.license_ip_binding_list()

    def perform_update(self, serializer):
        # Only the name, written alone: the flush refreshes the same row's lease and last sighting.
        serializer.instance = binding_rename(
            binding=serializer.instance,
            name=serializer.validated_data.get("name", serializer.instance.name),
            actor=self.request.user,
            source="api",
            ip_address=client_ip(self.request),
        )

    @extend_schema(
        summary="Deactivate a machine, freeing its seat (owners and admins)",
        request=None,
        responses={200: LicenseIpBindingSerializer, 409: OpenApiResponse(description="Already inactive.")},
    )
    @action(detail=True, methods=["post"])
    def deactivate(self, request, pk=None):
        binding = self.get_object()
        deactivated = binding_deactivate(
            binding=binding,
            actor=request.user,
            source="api",
            ip_address=client_ip(request),
            reason=LicenseIpBinding.DeactivationReason.CUSTOMER,
        )
        if not deactivated:
            raise Conflict("This machine is not active.", code="machine_not_active")
        return Response(LicenseIpBindingSerializer(selectors.license_ip_binding_list().get(pk=binding.pk)).data)


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
    """An organization sees the collisions on its licenses; staff see all and resolve them."""

    serializer_class = LicenseCollisionSerializer
    scope_resource = "license-collisions"
    filterset_class = LicenseCollisionFilterSet
    ordering_fields = ["detected_at", "last_seen_at"]
    ordering = ["-detected_at"]
    dangerously_staff_sees_all_organizations = True

    def scoped_queryset(self) -> QuerySet:
        return selectors.license_collision_list()

    def get_permissions(self):
        if self.action == "resolve":
            return [perms.IsStaff(), perms.ApiKeyScopePermission()]
        return super().get_permissions()

    @extend_schema(
        summary="Resolve a collision by hand (staff)",
        request=CollisionResolveSerializer,
        responses={200: LicenseCollisionSerializer, 409: OpenApiResponse(description="Already resolved.")},
    )
    @action(detail=True, methods=["post"])
    def resolve(self, request, pk=None):
        serializer = CollisionResolveSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        collision = collision_resolve(
            collision=self.get_object(),
            actor=request.user,
            note=serializer.validated_data["note"],
            source="api",
            ip_address=client_ip(request),
        )
        return Response(LicenseCollisionSerializer(selectors.license_collision_list().get(pk=collision.pk)).data)


class OfflineActivationView(ApiView):
    """Air-gapped activation: an owner or admin uploads the request file the offline software
    wrote and gets back the signed response file to carry to it (``ipcontrol.offline``). The
    request must name a license of the caller's organization; the activation counts seats, is
    recorded and raises events as an online one does."""

    permission_classes = [IsAuthenticated, perms.RolePermission]
    scope_resource = "license-bindings"
    read_roles = perms.MANAGER_ROLES
    write_roles = perms.MANAGER_ROLES
    #: a request file is a few hundred bytes
    max_request_bytes = 64 * 1024

    @extend_schema(
        summary="Activate an offline machine from its request file; answers the signed response file",
        request=OfflineActivationRequestSerializer,
        responses={
            200: SignedDocumentSerializer,
            400: OpenApiResponse(description="Not an activation request file (error code invalid)."),
            404: OpenApiResponse(description="No license of your organization has the request's key."),
        },
    )
    def post(self, request):
        serializer = OfflineActivationRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        response = offline_activation(
            document=serializer.validated_data["request"],
            organization=self.own_organization(),
            ip_address=client_ip(request),
        )
        return Response(response)
