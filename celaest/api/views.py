"""The base of every authenticated API view that is not a routed viewset (``/me``, the caller's
organization, ...). Like the base viewsets (which derive from the same mixin), it checks the
scopes of an API key on every request, whatever ``permission_classes`` a view lists: a view that
forgot ``ApiKeyScopePermission`` let a key scoped to ``licenses:read`` change the caller's profile.

Views whose credential is not a user API key (public license endpoints, signed download links,
payment providers' webhooks) do not derive from it; they authenticate no API key at all.
"""

from asgiref.sync import iscoroutinefunction
from django.http import HttpResponse
from django.http.response import HttpResponseBase
from django.template.response import SimpleTemplateResponse
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import IsAuthenticated
from rest_framework.views import APIView

from celaest.aio import sync_step
from celaest.errors import NotFound

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


class OwnOrganizationMixin:
    """Views about the caller's own organization (``/organization``, its AI license, offline
    activation)."""

    def own_organization(self):
        """The caller's organization; 404 ``no_organization`` for a user who belongs to none."""
        organization = self.request.user.organization
        if organization is None:
            raise NotFound("You do not belong to an organization.", code="no_organization")
        return organization


class ApiView(ApiKeyScopeCheckMixin, OwnOrganizationMixin, APIView):
    permission_classes = [IsAuthenticated]


class ApiGenericView(ApiKeyScopeCheckMixin, OwnOrganizationMixin, GenericAPIView):
    permission_classes = [IsAuthenticated]


class AsyncApiView(APIView):
    """An API view whose handlers are coroutines (``async def post``), for work that waits on the
    network for seconds (AI providers), served by ``celaest.asgi.AIHandler``.

    DRF's request cycle is synchronous; it runs here as one short step (``celaest.aio.sync_step``):
    authentication, permissions, throttles, then the view's ``prepare_<method>(request)`` when it
    has one (validation and the database work before the wait), whose value the handler receives
    as ``prepared``. The handler then awaits what it waits for, holding no thread, and takes
    further short steps for its database work. Errors take DRF's path (the project's exception
    handler, the stable JSON shape), and the answer is rendered here, so Django has nothing left
    to run synchronously. Subclasses call ``release`` at the end of a stream they return.
    """

    async def dispatch(self, request, *args, **kwargs):
        self.args, self.kwargs = args, kwargs
        self.headers = self.default_response_headers
        begun = await sync_step(self._begin)(request, args, kwargs)
        if isinstance(begun, HttpResponseBase):
            return begun
        drf_request, handler, prepared = begun
        try:
            response = await handler(drf_request, prepared, *args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - DRF's handle_exception decides (and re-raises the unexpected)
            response = self.handle_exception(exc)
        finally:
            await self.after_handler()
        return self._finished(drf_request, response)

    def _begin(self, request, args, kwargs):
        drf_request = self.initialize_request(request, *args, **kwargs)
        self.request = drf_request
        try:
            self.initial(drf_request, *args, **kwargs)
            method = drf_request.method.lower()
            handler = getattr(self, method, None) if method in self.http_method_names else None
            if handler is None:
                self.http_method_not_allowed(drf_request)
            if not iscoroutinefunction(handler):  # DRF's own (OPTIONS): answered in this step
                return self._finished(drf_request, handler(drf_request, *args, **kwargs))
            prepare = getattr(self, f"prepare_{method}", None)
            prepared = prepare(drf_request, *args, **kwargs) if prepare is not None else None
        except Exception as exc:  # noqa: BLE001 - as in dispatch
            return self._finished(drf_request, self.handle_exception(exc))
        return drf_request, handler, prepared

    async def after_handler(self) -> None:
        """Runs after every handler, whatever its outcome."""

    def _finished(self, request, response) -> HttpResponseBase:
        return rendered(self.finalize_response(request, response, *self.args, **self.kwargs))


def rendered(response: HttpResponseBase) -> HttpResponseBase:
    """A DRF response rendered into a plain one, for an async view to return: Django renders a
    response that can still be rendered in a synchronous step of its own. Others (streams) as
    they are."""
    if not isinstance(response, SimpleTemplateResponse):
        return response
    response.render()
    plain = HttpResponse(response.content, status=response.status_code)
    for name, value in response.items():
        plain[name] = value
    plain.cookies = response.cookies
    return plain
