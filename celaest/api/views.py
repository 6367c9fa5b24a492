"""The base of every authenticated API view that is not a routed viewset (``/me``, the caller's
organization, ...). Like the base viewsets (which derive from the same mixin), it checks the
scopes of an API key on every request, whatever ``permission_classes`` a view lists: a view that
forgot ``ApiKeyScopePermission`` let a key scoped to ``licenses:read`` change the caller's profile.

Views whose credential is not a user API key (public license endpoints, signed download links,
payment providers' webhooks) do not derive from it; they authenticate no API key at all.
"""

from rest_framework.generics import GenericAPIView
from rest_framework.permissions import IsAuthenticated
from rest_framework.views import APIView

from . import permissions as perms


class ApiKeyScopeCheckMixin:
    """Checks, after the view's own permissions, that an API key holds a scope for the view's
    ``scope_resource`` (``:read`` for safe methods, ``:write`` for the others). A view that names
    no resource is closed to API keys."""

    #: the resource name API key scopes refer to (``<scope_resource>:read`` / ``:write``)
    scope_resource: str = ""

    def check_permissions(self, request):
        super().check_permissions(request)
        if not perms.api_key_scope_allows(request, self):
            self.permission_denied(request, message=perms.ApiKeyScopePermission.message, code="scope_missing")


class ApiView(ApiKeyScopeCheckMixin, APIView):
    permission_classes = [IsAuthenticated]


class ApiGenericView(ApiKeyScopeCheckMixin, GenericAPIView):
    permission_classes = [IsAuthenticated]
