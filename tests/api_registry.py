"""Every REST endpoint of /api/v1/ as declared by the apps' routers, and a way to create a row
of any exposed model for a given organization and user — so generic tests cover every endpoint
without a hand-kept list."""

from dataclasses import dataclass
from importlib import import_module

from celaest.api.viewsets import CatalogViewSet, OwnViewSet, StaffViewSet, TenantViewSet
from celaest.urls import API_APPS
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
