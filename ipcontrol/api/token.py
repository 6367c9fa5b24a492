"""What installed software does with a license token (``Authorization: License <token>``, made
by the organization's owners and admins, scoped to one license): see, rename and deactivate its
own machine, named by its fingerprint, without an organization API key (the header is read by
the views, as the public endpoints read the license key: no user's credential applies). Another license's
machines do not exist for it. Rate-limited per token like the public license endpoints per key."""

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from celaest.errors import Conflict, LimitExceeded, NotFound
from celaest.net import client_ip
from celaest.ratelimit import rate_limit_hit
from ipcontrol import selectors
from ipcontrol.models import LicenseIpBinding
from ipcontrol.services import binding_deactivate, binding_rename
from licensing.authentication import KEYWORD, license_token_from_request
from licensing.models import LicenseToken

from .serializers import LicenseIpBindingSerializer, StringField


class LicenseTokenRequired(BasePermission):
    """The request carries a usable license token (``view.license_token`` then), within its rate."""

    def has_permission(self, request, view):
        view.license_token = license_token_from_request(request)
        limit = settings.LICENSE_VALIDATE_RATE_PER_KEY
        decision = rate_limit_hit(key=f"license-token:{view.license_token.pk}", limit=limit)
        if not decision.allowed:
            raise LimitExceeded(
                "Too many requests with this token.", code="rate_limited", retry_after=decision.retry_after
            )
        return True


class MachineQuerySerializer(serializers.Serializer):
    fingerprint = StringField(max_length=255, help_text="The machine's fingerprint, as activated.")


class MachineRenameSerializer(MachineQuerySerializer):
    name = StringField(max_length=100, allow_blank=True)


class LicenseTokenView(APIView):
    authentication_classes: list = []
    permission_classes = [LicenseTokenRequired]
    #: a fingerprint and a name
    max_request_bytes = 16 * 1024
    license_token: LicenseToken

    def get_authenticate_header(self, request):
        return KEYWORD  # a missing or bad token is a 401, not a 403

    def machine(self, data) -> LicenseIpBinding:
        """The token's license's machine named by ``data``'s fingerprint (404 for any other)."""
        serializer = MachineQuerySerializer(data=data)
        serializer.is_valid(raise_exception=True)
        binding = (
            selectors.license_ip_binding_list()
            .filter(license_id=self.license_token.license_id, machine_id=serializer.validated_data["fingerprint"])
            .first()
        )
        if binding is None:
            raise NotFound("No machine of this license has this fingerprint.", code="machine_not_found")
        return binding


_ERRORS = {
    400: OpenApiResponse(description="Malformed request (error code invalid)."),
    401: OpenApiResponse(description="No, or an unknown, expired or revoked, license token."),
    404: OpenApiResponse(description="No machine of the token's license has this fingerprint."),
    429: OpenApiResponse(description="Too many requests with this token (error code rate_limited)."),
}


class LicenseTokenMachineView(LicenseTokenView):
    @extend_schema(
        summary="Get my machine (license token)",
        auth=[],
        parameters=[OpenApiParameter("fingerprint", str, required=True)],
        responses={200: LicenseIpBindingSerializer, **_ERRORS},
    )
    def get(self, request):
        return Response(LicenseIpBindingSerializer(self.machine(request.query_params)).data)

    @extend_schema(
        summary="Rename my machine (license token)",
        auth=[],
        request=MachineRenameSerializer,
        responses={200: LicenseIpBindingSerializer, **_ERRORS},
    )
    def patch(self, request):
        binding = self.machine(request.data)
        serializer = MachineRenameSerializer(data=request.data)
        if not serializer.is_valid():
            raise ValidationError(serializer.errors)
        binding = binding_rename(binding=binding, name=serializer.validated_data["name"], ip_address=client_ip(request))
        return Response(LicenseIpBindingSerializer(binding).data)


class LicenseTokenMachineDeactivateView(LicenseTokenView):
    @extend_schema(
        summary="Deactivate my machine, freeing its seat (license token)",
        auth=[],
        request=MachineQuerySerializer,
        responses={200: LicenseIpBindingSerializer, 409: OpenApiResponse(description="Already inactive."), **_ERRORS},
    )
    def post(self, request):
        binding = self.machine(request.data)
        deactivated = binding_deactivate(
            binding=binding,
            source="license_token",
            ip_address=client_ip(request),
            reason=LicenseIpBinding.DeactivationReason.CLIENT,
        )
        if not deactivated:
            raise Conflict("This machine is not active.", code="machine_not_active")
        return Response(LicenseIpBindingSerializer(selectors.license_ip_binding_list().get(pk=binding.pk)).data)
