"""Licensing endpoints: the plan catalogue (staff write), and each organization's licenses and
their usage (read-only here; issuing and changing licenses are service operations)."""

from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.filters import OrderingFilter
from rest_framework.response import Response

from celaest.api import permissions as perms
from celaest.api.schema import crud_schema
from celaest.api.viewsets import CatalogViewSet, CrudMixin, DatabaseConflictsMixin, ReadOnlyMixin, TenantViewSet
from celaest.net import client_ip
from licensing import services
from licensing.filters import LicenseFilterSet, LicenseUsageLogFilterSet, SubscriptionPlanFilterSet
from licensing.models import License, LicenseToken, LicenseUsageLog, SubscriptionPlan

from .serializers import (
    LicenseIssueSerializer,
    LicensePolicyUpdateSerializer,
    LicenseReasonSerializer,
    LicenseRenewSerializer,
    LicenseSerializer,
    LicenseTokenCreatedSerializer,
    LicenseTokenCreateSerializer,
    LicenseTokenSerializer,
    LicenseUsageLogSerializer,
    SubscriptionPlanSerializer,
)

UUID_PATTERN = "[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"


@extend_schema_view(
    **crud_schema("a subscription plan", "subscription plans", destroy="Delete an unused subscription plan (staff)")
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


_CONFLICT = {409: OpenApiResponse(description="The license's status does not allow this (e.g. license_revoked).")}


@extend_schema_view(
    list=extend_schema(summary="List my organization's licenses (staff: every organization's)"),
    retrieve=extend_schema(summary="Get a license with its effective limits"),
)
class LicenseViewSet(TenantViewSet, ReadOnlyMixin):
    """An organization's members see its licenses; only platform staff issue and change them."""

    serializer_class = LicenseSerializer
    scope_resource = "licenses"
    filterset_class = LicenseFilterSet
    search_fields = ["license_key"]
    ordering_fields = ["created_at", "expires_at", "status", "issued_at"]
    ordering = ["-created_at"]
    # Not a UUID, not a license: leaves /licenses/validate etc. to the public endpoints.
    lookup_value_regex = UUID_PATTERN
    dangerously_staff_sees_all_organizations = True
    staff_actions = frozenset({"create", "suspend", "reinstate", "renew", "revoke", "policy"})

    def scoped_queryset(self):
        return License.objects.select_related("plan")

    def get_permissions(self):
        if self.action in self.staff_actions:
            return [perms.IsStaff(), perms.ApiKeyScopePermission()]
        return super().get_permissions()

    def _changed(self, license: License) -> Response:
        license = License.objects.select_related("plan").get(pk=license.pk)
        return Response(LicenseSerializer(license).data)

    def _audit_context(self) -> dict:
        return {"actor": self.request.user, "source": "api", "ip_address": client_ip(self.request)}

    @extend_schema(
        summary="Issue a license (staff)", request=LicenseIssueSerializer, responses={201: LicenseSerializer}
    )
    def create(self, request):
        serializer = LicenseIssueSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        license = services.license_issue(
            organization=data["organization"],
            plan=data["plan"],
            status=data["status"],
            expires_in_days=data.get("expires_in_days"),
            custom_limits=data["custom_limits"],
            actor=request.user,
            source="api",
        )
        return Response(LicenseSerializer(license).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Suspend a license (staff)",
        request=LicenseReasonSerializer,
        responses={200: LicenseSerializer, **_CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def suspend(self, request, pk=None):
        serializer = LicenseReasonSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        license = services.license_suspend(
            license=self.get_object(), reason=serializer.validated_data["reason"], **self._audit_context()
        )
        return self._changed(license)

    @extend_schema(
        summary="Reinstate a suspended license (staff)", request=None, responses={200: LicenseSerializer, **_CONFLICT}
    )
    @action(detail=True, methods=["post"])
    def reinstate(self, request, pk=None):
        return self._changed(services.license_reinstate(license=self.get_object(), **self._audit_context()))

    @extend_schema(
        summary="Renew (extend) a license (staff)",
        request=LicenseRenewSerializer,
        responses={200: LicenseSerializer, **_CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def renew(self, request, pk=None):
        serializer = LicenseRenewSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        license = services.license_renew(
            license=self.get_object(), **serializer.validated_data, **self._audit_context()
        )
        return self._changed(license)

    @extend_schema(
        summary="Override the plan's machine policy and add entitlements for one license (staff)",
        request=LicensePolicyUpdateSerializer,
        responses={200: LicenseSerializer},
    )
    @action(detail=True, methods=["post"])
    def policy(self, request, pk=None):
        serializer = LicensePolicyUpdateSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        license = services.license_policy_set(
            license=self.get_object(), changes=dict(serializer.validated_data), **self._audit_context()
        )
        return self._changed(license)

    @extend_schema(
        summary="Revoke a license for good (staff)",
        request=LicenseReasonSerializer,
        responses={200: LicenseSerializer, **_CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        serializer = LicenseReasonSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        license = services.license_revoke(
            license=self.get_object(), reason=serializer.validated_data["reason"], **self._audit_context()
        )
        return self._changed(license)


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


@extend_schema_view(
    list=extend_schema(summary="List my organization's license tokens (owners and admins)"),
    retrieve=extend_schema(summary="Get a license token (never the token itself)"),
    destroy=extend_schema(summary="Revoke a license token", responses={204: None}),
)
class LicenseTokenViewSet(
    TenantViewSet, ReadOnlyMixin, mixins.CreateModelMixin, mixins.DestroyModelMixin
):  # fmt: skip
    """Tokens scoped to one license, which installed software uses to manage its own machine
    (``/api/v1/licenses/machine``) without an organization API key."""

    serializer_class = LicenseTokenSerializer
    scope_resource = "license-tokens"
    read_roles = perms.MANAGER_ROLES
    write_roles = perms.MANAGER_ROLES
    filter_backends = [DjangoFilterBackend, OrderingFilter]
    filterset_fields = ["license"]
    ordering_fields = ["created_at", "last_used_at"]
    ordering = ["-created_at"]

    def scoped_queryset(self):
        return LicenseToken.objects.all()

    @extend_schema(
        summary="Create a license token (shown once)",
        request=LicenseTokenCreateSerializer,
        responses={201: LicenseTokenCreatedSerializer},
    )
    def create(self, request):
        serializer = LicenseTokenCreateSerializer(data=request.data, organization=self.caller_organization())
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        token, raw = services.license_token_create(
            license=data["license"],
            name=data["name"],
            expires_in_days=data.get("expires_in_days"),
            actor=request.user,
            source="api",
            ip_address=client_ip(request),
        )
        body = {**LicenseTokenSerializer(token).data, "token": raw}
        return Response(body, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance):
        services.license_token_revoke(
            token=instance, actor=self.request.user, source="api", ip_address=client_ip(self.request)
        )
