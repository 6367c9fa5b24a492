"""Every REST endpoint of /api/v1/ as declared by the apps' routers, and a way to create a row
of any exposed model for a given organization and user — so generic tests cover every endpoint
without a hand-kept list."""

import re
from dataclasses import dataclass
from importlib import import_module

from django.urls import URLResolver, get_resolver, resolve
from django.urls.exceptions import Resolver404
from rest_framework.views import APIView

from celaest.api.viewsets import CatalogViewSet, OwnViewSet, StaffViewSet, TenantViewSet
from celaest.urls import API_APPS
from settings_app.authentication import ApiKeyAuthentication
from tests import factories as f


@dataclass(frozen=True)
class Endpoint:
    prefix: str
    viewset: type

    @property
    def kind(self) -> str:
        for base, name in ((TenantViewSet, "tenant"), (OwnViewSet, "own"), (CatalogViewSet, "catalog")):
            if issubclass(self.viewset, base):
                return name
        if issubclass(self.viewset, StaffViewSet):
            return "staff"
        raise AssertionError(f"{self.viewset.__name__} does not derive from a CELAEST base viewset")

    @property
    def model(self):
        return self.viewset().scoped_queryset().model

    def supports(self, action: str) -> bool:
        return hasattr(self.viewset, action)

    def list_url(self) -> str:
        return f"/api/v1/{self.prefix}"

    def detail_url(self, obj) -> str:
        return f"/api/v1/{self.prefix}/{getattr(obj, self.viewset.lookup_field)}"

    def __str__(self):
        return self.prefix


def all_endpoints() -> list[Endpoint]:
    endpoints = []
    for app in API_APPS:
        router = import_module(f"{app}.api.urls").router
        endpoints.extend(Endpoint(prefix, viewset) for prefix, viewset, _ in router.registry)
    return endpoints


_FACTORIES = {
    factory._meta.model: factory
    for factory in vars(f).values()
    if isinstance(factory, type) and issubclass(factory, f.factory.django.DjangoModelFactory) and factory._meta.model
}
_FACTORIES[f.User] = f.UserFactory


def make_row(model, *, organization, user):
    """A row of ``model`` that belongs to ``organization`` (and ``user`` where it has one)."""
    if model is f.User:
        return f.UserFactory(organization=organization)
    if model is f.AssetDownload:
        asset = f.CustomerAssetFactory(organization=organization, user=user)
        return f.AssetDownloadFactory(asset=asset, user=user)
    if model is f.WebhookDelivery:
        return f.WebhookDeliveryFactory(webhook=f.WebhookFactory(organization=organization, user=user))
    factory = _FACTORIES.get(model)
    if factory is None:
        raise AssertionError(f"tests/factories.py has no factory for {model.__name__}")
    field_names = {field.name for field in model._meta.get_fields()}
    kwargs = {}
    if "license" in field_names and "organization" in field_names:
        kwargs["license"] = f.LicenseFactory(organization=organization)
    if "organization" in field_names:
        kwargs["organization"] = organization
    if "user" in field_names:
        kwargs["user"] = user
    if model is f.Order or model is f.Invoice:
        kwargs.pop("license", None)
    if model is f.Invoice:
        kwargs["order"] = f.OrderFactory(organization=organization, user=user)
    return factory(**kwargs)


# --- every route, routed viewset or not ------------------------------------------------------

#: fills every path parameter (a UUID matches uuid, slug, str and the routers' ``[^/.]+``)
SAMPLE_PATH_VALUE = "00000000-0000-4000-8000-000000000000"
WRITE_METHODS = ("post", "put", "patch", "delete")


@dataclass(frozen=True)
class Route:
    """One URL pattern served by a DRF view, with a concrete path that resolves to it."""

    path: str
    view: type
    methods: tuple[str, ...]

    @property
    def write_methods(self) -> tuple[str, ...]:
        return tuple(m for m in self.methods if m in WRITE_METHODS)

    def authenticates_api_keys(self) -> bool:
        view = self.view()
        return any(isinstance(a, ApiKeyAuthentication) for a in view.get_authenticators())

    def __str__(self):
        return self.path


def _concrete(prefix: str) -> str:
    path = prefix.replace("^", "").replace("$", "").replace("/?", "")
    path = re.sub(r"\(\?P<\w+>[^)]*\)", SAMPLE_PATH_VALUE, path)
    return "/" + re.sub(r"<(?:\w+:)?\w+>", SAMPLE_PATH_VALUE, path)


def all_routes() -> list[Route]:
    """Every URL of the project that a DRF view serves (the API, the gateway, the docs), walked
    from the root URLconf: views that are not routed viewsets are included."""
    routes = []

    def walk(patterns, prefix):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, prefix + str(pattern.pattern))
                continue
            view = getattr(pattern.callback, "cls", None)
            if view is None or not issubclass(view, APIView):
                continue
            path = _concrete(prefix + str(pattern.pattern))
            try:
                if resolve(path).func is not pattern.callback:
                    continue  # shadowed by an earlier route (licenses/validate before licenses/<pk>)
            except Resolver404:
                raise AssertionError(f"cannot build a path for {prefix}{pattern.pattern}") from None
            actions = getattr(pattern.callback, "actions", None)
            if actions:
                methods = tuple(sorted(actions))
            else:
                methods = tuple(m for m in view.http_method_names if m != "options" and hasattr(view, m))
            routes.append(Route(path, view, methods))

    walk(get_resolver().url_patterns, "")
    return routes
