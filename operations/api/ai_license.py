"""Which license pays for the organization's AI gateway calls: the designated AI license
(``/ai-license``) and a user API key's own license (``/ai-license/keys/{key_id}``). Everyone in
the organization reads them; owners and admins change them. Another organization's key is a 404;
another organization's license, or one that is not live, a 400."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from celaest.api import permissions as perms
from celaest.api.views import ApiGenericView
from celaest.errors import NotFound, PaymentRequired
from licensing.models import License
from settings_app.models import UserApiKey

from ..ai_licenses import ai_license_designate, api_key_license_bind, paying_license
from ..models import ApiKeyLicense, OrganizationAILicense


@extend_schema_field(OpenApiTypes.UUID)
class _OrganizationLicenseField(serializers.PrimaryKeyRelatedField):
    """A license of the caller's organization (any other id: "does not exist")."""

    def get_queryset(self):
        organization_id = self.context["request"].user.organization_id
        return License.objects.filter(organization_id=organization_id)


class PayingLicenseChoiceSerializer(serializers.Serializer):
    license = _OrganizationLicenseField(
        allow_null=True, help_text="A license of your organization; null: no choice (the automatic one)."
    )


class OrganizationAILicenseSerializer(serializers.Serializer):
    license = serializers.UUIDField(
        allow_null=True, help_text="The designated AI license: pays for calls of keys bound to none."
    )
    paying_license = serializers.UUIDField(
        allow_null=True, help_text="The license that pays now for a key bound to none (null: none can)."
    )


class ApiKeyLicenseSerializer(serializers.Serializer):
    api_key = serializers.UUIDField()
    license = serializers.UUIDField(allow_null=True, help_text="The license this key's calls are paid by.")
    paying_license = serializers.UUIDField(
        allow_null=True, help_text="The license that pays now for this key's calls (null: none can)."
    )


class _PayingLicenseView(ApiGenericView):
    permission_classes = [IsAuthenticated, perms.RolePermission]
    scope_resource = "ai-license"
    read_roles = perms.ALL_ROLES
    write_roles = perms.MANAGER_ROLES

    def get_object(self):
        """What the view is about (DRF's OPTIONS asks it before describing PUT)."""
        return self.own_organization()

    def paying_now(self, api_key) -> str | None:
        try:
            return str(paying_license(user=self.request.user, api_key=api_key).pk)
        except PaymentRequired:
            return None

    def chosen(self):
        payload = PayingLicenseChoiceSerializer(data=self.request.data, context={"request": self.request})
        payload.is_valid(raise_exception=True)
        return payload.validated_data["license"]


class OrganizationAILicenseView(_PayingLicenseView):
    """The organization's designated AI license."""

    serializer_class = OrganizationAILicenseSerializer

    def _body(self, organization):
        designation = OrganizationAILicense.objects.filter(organization=organization).first()
        return {
            "license": designation.license_id if designation is not None else None,
            "paying_license": self.paying_now(None),
        }

    @extend_schema(summary="My organization's designated AI license", responses=OrganizationAILicenseSerializer)
    def get(self, request):
        return Response(OrganizationAILicenseSerializer(self._body(self.own_organization())).data)

    @extend_schema(
        summary="Designate the license that pays for my organization's AI calls (owners and admins)",
        request=PayingLicenseChoiceSerializer,
        responses=OrganizationAILicenseSerializer,
    )
    def put(self, request):
        organization = self.own_organization()
        ai_license_designate(organization=organization, license=self.chosen(), actor=request.user)
        return Response(OrganizationAILicenseSerializer(self._body(organization)).data)


class ApiKeyLicenseView(_PayingLicenseView):
    """The license one API key of the organization is bound to."""

    serializer_class = ApiKeyLicenseSerializer

    def get_object(self):
        return self._api_key(self.kwargs.get("key_id"))

    def _api_key(self, key_id) -> UserApiKey:
        api_key = (
            UserApiKey.objects.select_related("user__organization")
            .filter(pk=key_id, user__organization=self.own_organization())
            .first()
        )
        if api_key is None:
            raise NotFound("No such API key in your organization.")
        return api_key

    def _body(self, api_key):
        binding = ApiKeyLicense.objects.filter(api_key=api_key).first()
        return {
            "api_key": api_key.pk,
            "license": binding.license_id if binding is not None else None,
            "paying_license": self.paying_now(api_key),
        }

    @extend_schema(summary="The license an API key's AI calls are paid by", responses=ApiKeyLicenseSerializer)
    def get(self, request, key_id):
        return Response(ApiKeyLicenseSerializer(self._body(self._api_key(key_id))).data)

    @extend_schema(
        summary="Bind an API key to a license of my organization, or unbind it (owners and admins)",
        request=PayingLicenseChoiceSerializer,
        responses=ApiKeyLicenseSerializer,
    )
    def put(self, request, key_id):
        api_key = self._api_key(key_id)
        api_key_license_bind(api_key=api_key, license=self.chosen(), actor=request.user)
        return Response(ApiKeyLicenseSerializer(self._body(api_key)).data)
