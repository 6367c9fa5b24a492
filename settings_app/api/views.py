"""Settings endpoints: my sessions and API keys, my organization's webhooks and their delivery
log, and the platform's system config and feature flags (staff)."""

from django.db.models import QuerySet
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from celaest.api import permissions as perms
from celaest.api.pagination import CreatedAtCursorPagination
from celaest.api.schema import crud_schema
from celaest.api.viewsets import CrudMixin, OwnViewSet, ReadOnlyMixin, StaffViewSet, TenantViewSet
from celaest.errors import Forbidden
from settings_app import runtime, selectors
from settings_app.filters import (
    FeatureFlagFilterSet,
    SystemConfigFilterSet,
    UserApiKeyFilterSet,
    UserSessionFilterSet,
    WebhookDeliveryFilterSet,
    WebhookFilterSet,
)
from settings_app.models import FeatureFlag, SystemConfig, UserApiKey
from settings_app.services.api_keys import api_key_create, api_key_revoke, api_key_update
from settings_app.services.config import KEEP, system_config_create, system_config_update
from settings_app.services.outbox import webhook_delivery_replay, webhook_recover_failed, webhook_send_test
from settings_app.services.sessions import user_session_revoke, user_sessions_revoke_others
from settings_app.services.webhooks import webhook_create, webhook_delete, webhook_secret_rotate, webhook_update

from .serializers import (
    SENSITIVE_MASK,
    ApiKeyCreatedSerializer,
    ApiKeyCreateSerializer,
    ApiKeySerializer,
    ApiKeyUpdateSerializer,
    EvaluatedFlagsSerializer,
    FeatureFlagSerializer,
    SessionsRevokedSerializer,
    SystemConfigSerializer,
    UserSessionSerializer,
    WebhookCreatedSerializer,
    WebhookDeliverySerializer,
    WebhookRecoveredSerializer,
    WebhookRecoverSerializer,
    WebhookSecretRotatedSerializer,
    WebhookSecretRotateSerializer,
    WebhookSerializer,
)


@extend_schema_view(
    list=extend_schema(summary="List my sessions"),
    retrieve=extend_schema(summary="Get one of my sessions"),
    destroy=extend_schema(summary="Revoke one of my sessions"),
)
class UserSessionViewSet(OwnViewSet, ReadOnlyMixin, mixins.DestroyModelMixin):
    serializer_class = UserSessionSerializer
    scope_resource = "sessions"
    filterset_class = UserSessionFilterSet
    ordering_fields = ["last_activity_at", "created_at", "expires_at"]
    ordering = ["-last_activity_at"]

    def scoped_queryset(self) -> QuerySet:
        return selectors.user_session_list()

    def perform_destroy(self, instance):
        user_session_revoke(session=instance)

    @extend_schema(
        summary="Revoke all my other sessions (every login but this one)",
        request=None,
        responses={200: SessionsRevokedSerializer},
    )
    @action(detail=False, methods=["post"], url_path="revoke-others")
    def revoke_others(self, request):
        django_session = getattr(request, "session", None)
        revoked = user_sessions_revoke_others(
            user=request.user, current_session_key=getattr(django_session, "session_key", None)
        )
        return Response(SessionsRevokedSerializer({"revoked": revoked}).data)


@extend_schema_view(
    list=extend_schema(summary="List my API keys"),
    retrieve=extend_schema(summary="Get one of my API keys"),
    create=extend_schema(
        summary="Create an API key (the key is shown once)",
        request=ApiKeyCreateSerializer,
        responses={201: ApiKeyCreatedSerializer},
    ),
    update=extend_schema(
        summary="Change one of my API keys' name and AI gateway limits",
        request=ApiKeyUpdateSerializer,
        responses={200: ApiKeySerializer},
    ),
    partial_update=extend_schema(
        summary="Change one of my API keys' name or AI gateway limits (models, spend, tokens per minute, in flight)",
        request=ApiKeyUpdateSerializer,
        responses={200: ApiKeySerializer},
    ),
    destroy=extend_schema(summary="Revoke one of my API keys"),
)
class ApiKeyViewSet(
    OwnViewSet, ReadOnlyMixin, mixins.CreateModelMixin, mixins.UpdateModelMixin, mixins.DestroyModelMixin
):
    serializer_class = ApiKeySerializer
    scope_resource = "api-keys"
    filterset_class = UserApiKeyFilterSet
    search_fields = ["name", "key_prefix"]
    ordering_fields = ["created_at", "last_used_at", "name"]
    ordering = ["-created_at"]

    def scoped_queryset(self) -> QuerySet:
        return UserApiKey.objects.all()

    def create(self, request, *args, **kwargs):
        payload = ApiKeyCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        self._check_no_escalation(payload.validated_data.get("scopes", ["*"]))
        issued = api_key_create(user=request.user, **payload.validated_data)
        body = ApiKeyCreatedSerializer(issued.api_key).data
        body["key"] = issued.raw_key
        return Response(body, status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        api_key = self.get_object()
        payload = ApiKeyUpdateSerializer(data=request.data, partial=kwargs.get("partial", False))
        payload.is_valid(raise_exception=True)
        api_key_update(api_key=api_key, **payload.validated_data)
        return Response(ApiKeySerializer(api_key).data)

    def _check_no_escalation(self, scopes: list[str]) -> None:
        """A key may mint keys with at most its own scopes, never more."""
        caller_scopes = getattr(self.request.auth, "api_key_scopes", None)
        if caller_scopes is None:
            return
        for scope in scopes:
            resource, _, access = scope.partition(":")
            allowed = (
                "*" in caller_scopes
                if scope == "*"
                else perms.api_key_allows(caller_scopes, resource, write=access == "write")
            )
            if not allowed:
                raise Forbidden(
                    "An API key cannot create a key with scopes it does not hold.",
                    code="scope_escalation",
                    details={"scopes": [scope]},
                )

    def perform_destroy(self, instance):
        api_key_revoke(api_key=instance)


@extend_schema_view(
    list=extend_schema(summary="List my organization's webhooks"),
    retrieve=extend_schema(summary="Get a webhook"),
    create=extend_schema(
        summary="Register a webhook (the signing secret is shown once)",
        request=WebhookSerializer,
        responses={201: WebhookCreatedSerializer},
    ),
    update=extend_schema(summary="Replace a webhook's settings"),
    partial_update=extend_schema(summary="Update a webhook (name, URL, events, pause/resume)"),
    destroy=extend_schema(summary="Delete a webhook and its delivery log"),
)
class WebhookViewSet(TenantViewSet, CrudMixin):
    serializer_class = WebhookSerializer
    scope_resource = "webhooks"
    read_roles = perms.MANAGER_ROLES
    write_roles = perms.MANAGER_ROLES
    stamp_user = True
    filterset_class = WebhookFilterSet
    search_fields = ["name", "url"]
    ordering_fields = ["name", "created_at"]
    ordering = ["name"]

    def scoped_queryset(self) -> QuerySet:
        return selectors.webhook_list()

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        created = webhook_create(**self.creation_stamp(), **serializer.validated_data)
        body = WebhookCreatedSerializer(created.webhook).data
        body["secret"] = created.secret
        return Response(body, status=status.HTTP_201_CREATED)

    def perform_update(self, serializer):
        webhook_update(webhook=serializer.instance, **serializer.validated_data)

    def perform_destroy(self, instance):
        webhook_delete(webhook=instance)

    @extend_schema(
        summary="Send a webhook.test event to this endpoint",
        request=None,
        responses={202: WebhookDeliverySerializer},
    )
    @action(detail=True, methods=["post"], url_path="test")
    def send_test(self, request, pk=None):
        delivery = webhook_send_test(webhook=self.get_object())
        return Response(WebhookDeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="Rotate the signing secret (the new one is shown once; both sign during the grace period)",
        request=WebhookSecretRotateSerializer,
        responses={200: WebhookSecretRotatedSerializer},
    )
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request, pk=None):
        payload = WebhookSecretRotateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        rotated = webhook_secret_rotate(webhook=self.get_object(), **payload.validated_data)
        body = {"secret": rotated.secret, "previous_secret_expires_at": rotated.webhook.previous_secret_expires_at}
        return Response(WebhookSecretRotatedSerializer(body).data)

    @extend_schema(
        summary="Send again every event that failed since a date",
        request=WebhookRecoverSerializer,
        responses={202: WebhookRecoveredSerializer},
    )
    @action(detail=True, methods=["post"])
    def recover(self, request, pk=None):
        payload = WebhookRecoverSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        queued = webhook_recover_failed(webhook=self.get_object(), **payload.validated_data)
        return Response(WebhookRecoveredSerializer({"queued": queued}).data, status=status.HTTP_202_ACCEPTED)


@extend_schema_view(
    list=extend_schema(summary="List webhook delivery attempts"),
    retrieve=extend_schema(summary="Get a webhook delivery attempt"),
)
class WebhookDeliveryViewSet(TenantViewSet, ReadOnlyMixin):
    """The append-only delivery log, newest first, paged by cursor."""

    serializer_class = WebhookDeliverySerializer
    scope_resource = "webhook-deliveries"
    read_roles = perms.MANAGER_ROLES
    write_roles = perms.MANAGER_ROLES
    pagination_class = CreatedAtCursorPagination
    filterset_class = WebhookDeliveryFilterSet
    filter_backends = [DjangoFilterBackend]  # the cursor fixes the order

    def scoped_queryset(self) -> QuerySet:
        return selectors.webhook_delivery_list()

    @extend_schema(
        summary="Replay a delivery now, as a new attempt of the same event",
        request=None,
        responses={202: WebhookDeliverySerializer},
    )
    @action(detail=True, methods=["post"])
    def replay(self, request, pk=None):
        delivery = webhook_delivery_replay(delivery=self.get_object())
        return Response(WebhookDeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


@extend_schema_view(
    **crud_schema(
        "a system setting",
        "system settings",
        staff_reads=True,
        update="Replace a system setting; omit value to keep it (staff)",
    )
)
class SystemConfigViewSet(StaffViewSet, CrudMixin):
    """Platform settings by key (dots allowed, e.g. ``billing.grace_days``). Sensitive values are
    masked in every response."""

    serializer_class = SystemConfigSerializer
    scope_resource = "system-config"
    lookup_field = "key"
    lookup_value_regex = r"[A-Za-z0-9_.:\-]+"
    filterset_class = SystemConfigFilterSet
    search_fields = ["key", "description"]
    ordering_fields = ["key", "updated_at"]
    ordering = ["key"]

    def scoped_queryset(self) -> QuerySet:
        return SystemConfig.objects.all()

    def perform_create(self, serializer):
        serializer.instance = system_config_create(actor=self.request.user, **serializer.validated_data)

    def perform_update(self, serializer):
        changes = dict(serializer.validated_data)
        value = changes.pop("value", KEEP)
        if value == SENSITIVE_MASK and serializer.instance.is_sensitive:
            value = KEEP  # the mask sent back from a read is not a new value
        system_config_update(config=serializer.instance, actor=self.request.user, value=value, **changes)


@extend_schema_view(**crud_schema("a feature flag", "feature flags", staff_reads=True))
class FeatureFlagViewSet(StaffViewSet, CrudMixin):
    serializer_class = FeatureFlagSerializer
    scope_resource = "feature-flags"
    filterset_class = FeatureFlagFilterSet
    search_fields = ["flag_key", "description"]
    ordering_fields = ["flag_key", "updated_at"]
    ordering = ["flag_key"]

    def scoped_queryset(self) -> QuerySet:
        return FeatureFlag.objects.all()


class EvaluatedFlagsView(APIView):
    """The feature flags as they apply to the caller (any role; an API key needs ``flags:read``)."""

    scope_resource = "flags"
    permission_classes = [IsAuthenticated, perms.ApiKeyScopePermission]

    @extend_schema(summary="My evaluated feature flags", responses={200: EvaluatedFlagsSerializer})
    def get(self, request):
        return Response(EvaluatedFlagsSerializer({"flags": runtime.flags_evaluated(request.user)}).data)
