"""Identity endpoints: the caller (/me), their organization, and its members."""

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from celaest.api import permissions as perms
from celaest.api.views import ApiGenericView
from celaest.api.viewsets import TenantViewSet
from identity import services
from identity.filters import MemberFilterSet
from identity.models import User

from .serializers import (
    InvitationAcceptSerializer,
    MemberCreateSerializer,
    MemberInvitationSerializer,
    MemberSerializer,
    MeSerializer,
    OrganizationSerializer,
)


class MeView(ApiGenericView):
    """The caller's own profile. Any API key may read it (a client checks which user and
    organization its key acts for, whatever the key is scoped to); changing it takes ``me:write``
    (or ``*``), like any other resource."""

    serializer_class = MeSerializer
    scope_resource = "me"
    key_reads_open = True

    @extend_schema(summary="The authenticated user", responses=MeSerializer)
    def get(self, request):
        return Response(MeSerializer(request.user).data)

    @extend_schema(summary="Update my profile", request=MeSerializer, responses=MeSerializer)
    def patch(self, request):
        serializer = MeSerializer(request.user, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        services.profile_update(user=request.user, **serializer.validated_data)
        return Response(MeSerializer(request.user).data)


class OrganizationView(ApiGenericView):
    """The caller's organization. Owners and admins may rename it and change its settings."""

    serializer_class = OrganizationSerializer
    permission_classes = [IsAuthenticated, perms.RolePermission]
    scope_resource = "organization"
    read_roles = perms.ALL_ROLES
    write_roles = perms.MANAGER_ROLES

    @extend_schema(summary="My organization", responses=OrganizationSerializer)
    def get(self, request):
        return Response(OrganizationSerializer(self.own_organization()).data)

    @extend_schema(summary="Update my organization", request=OrganizationSerializer, responses=OrganizationSerializer)
    def patch(self, request):
        organization = self.own_organization()
        serializer = OrganizationSerializer(organization, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        services.organization_update(organization=organization, actor=request.user, **serializer.validated_data)
        return Response(OrganizationSerializer(organization).data)


@extend_schema_view(
    list=extend_schema(summary="List members of my organization"),
    retrieve=extend_schema(summary="Get a member"),
    create=extend_schema(
        summary="Invite a member (e-mailed; the account is made when they accept)",
        request=MemberCreateSerializer,
        responses={202: MemberInvitationSerializer},
    ),
    partial_update=extend_schema(summary="Change a member's role or deactivate them"),
    update=extend_schema(summary="Change a member's role or active state"),
    destroy=extend_schema(summary="Deactivate a member"),
)
class MemberViewSet(
    TenantViewSet,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
):
    serializer_class = MemberSerializer
    scope_resource = "members"
    write_roles = perms.MANAGER_ROLES
    filterset_class = MemberFilterSet
    search_fields = ["email", "first_name", "last_name"]
    ordering_fields = ["email", "created_at", "role"]
    ordering = ["email"]

    def scoped_queryset(self):
        return User.objects.all()

    def create(self, request, *args, **kwargs):
        # An invitation, answered alike for a new address and one with an account elsewhere
        # (see identity.services.member_invite): 202, as nothing is a member yet.
        payload = MemberCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        invitation = services.member_invite(
            organization=self.caller_organization(), actor=request.user, **payload.validated_data
        )
        return Response(MemberInvitationSerializer(invitation).data, status=status.HTTP_202_ACCEPTED)

    def perform_update(self, serializer):
        services.member_update(
            actor=self.request.user,
            member=serializer.instance,
            role=serializer.validated_data.get("role"),
            is_active=serializer.validated_data.get("is_active"),
        )

    def perform_destroy(self, instance):
        services.member_deactivate(actor=self.request.user, member=instance)


class InvitationAcceptView(APIView):
    """Accept an invitation: no login (the signed invitation e-mailed to the address is the
    credential); creates the member's account in the inviting organization."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        summary="Accept an invitation to an organization (creates my account)",
        auth=[],
        request=InvitationAcceptSerializer,
        responses={201: MeSerializer},
    )
    def post(self, request):
        payload = InvitationAcceptSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        user = services.member_invitation_accept(
            token=payload.validated_data["token"], password=payload.validated_data.get("password") or None
        )
        return Response(MeSerializer(user).data, status=status.HTTP_201_CREATED)
