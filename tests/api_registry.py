"""Every REST endpoint of /api/v1/ as declared by the apps' routers, every other URL pattern under
/api/ and /v1/ (walked from the root URLconf, each declared with its credential and tenancy), and a
way to create a row of any exposed model for a given organization and user — so generic tests
cover every endpoint without a hand-kept list of the routed ones."""

import re
from dataclasses import dataclass
from importlib import import_module

from django.urls import URLResolver, get_resolver, resolve
from django.urls.exceptions import Resolver404

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


# --- every URL pattern under /api/ and /v1/ ---------------------------------------------------
# The router battery (tests/test_api_contract.py) exercises the list and detail routes of every
# registered viewset, and the detail actions of those viewsets generically. Every other pattern
# (a view outside the routers, a list-level action) is declared below with its credential and
# tenancy, and tests/test_api_tenancy.py holds its cross-tenant tests. A pattern that is neither
# fails ``test_every_url_pattern_is_covered_or_declared``.

#: fills every path parameter (a UUID matches uuid, slug, str and the routers' ``[^/.]+``)
SAMPLE_PATH_VALUE = "00000000-0000-4000-8000-000000000000"
WRITE_METHODS = ("post", "put", "patch", "delete")
STANDARD_ACTIONS = frozenset({"list", "create", "retrieve", "update", "partial_update", "destroy"})

# How a caller proves who they are.
USER = "user"  # a user API key (``Bearer cel_...``), a Supabase JWT or the admin session
API_KEY = "api-key"  # a user API key only
LICENSE_KEY = "license-key"  # a license key in the body: installed software, no user
LICENSE_TOKEN = "license-token"  # Authorization: License <token>, scoped to one license: installed software
SIGNED_LINK = "signed-link"  # a signed, expiring token in the URL: a bearer token
INVITATION = "invitation"  # the signed invitation e-mailed to the address
PROVIDER_SIGNATURE = "provider-signature"  # the payment provider's signature of the body
NO_CREDENTIAL = "none"
#: credentials of a user (their organization and role follow)
USER_CREDENTIALS = frozenset({USER, API_KEY})

# Whose data a route reaches.
PER_USER = "per-user"  # the caller's own rows (and their organization's, as it applies to them)
PER_ORGANIZATION = "per-organization"  # the caller's organization's rows
LICENSE_HOLDER = "license-holder"  # the organization that holds the license key presented
ASSET_OWNER = "asset-owner"  # the asset and owner the link was issued for
INVITING_ORGANIZATION = "inviting-organization"  # the organization that signed the invitation
ORDER_OF_THE_EVENT = "order-of-the-event"  # the order a provider-verified payment names
GLOBAL = "global"  # the same answer for every caller: no tenant's data


@dataclass(frozen=True)
class Access:
    """How a route outside the router battery is reached, and whose data it reaches."""

    credential: str
    tenancy: str
    methods: tuple[str, ...]
    #: what a request without any credential gets, ``(status, error code or None)``; for the
    #: credentials of a user it is always ``(401, "not_authenticated")``
    anonymous: tuple[int, str | None] | None = None
    #: a concrete path to request, when the pattern's parameters cannot be filled in
    probe: str | None = None
    #: settings under which ``anonymous`` holds (a deployment that enables the route)
    probe_settings: tuple[tuple[str, object], ...] = ()

    @property
    def takes_user_credentials(self) -> bool:
        return self.credential in USER_CREDENTIALS

    @property
    def anonymous_answer(self) -> tuple[int, str | None]:
        return (401, "not_authenticated") if self.takes_user_credentials else self.anonymous

    @property
    def tenant_scoped(self) -> bool:
        return self.tenancy != GLOBAL


_LICENSE_CHECK = Access(LICENSE_KEY, LICENSE_HOLDER, ("post",), anonymous=(400, "invalid"))
_DOCS = Access(NO_CREDENTIAL, GLOBAL, ("get",), anonymous=(200, None))

#: every URL pattern the router battery does not exercise by itself, by its path template
DECLARED: dict[str, Access] = {
    # public license endpoints (ipcontrol/api/public.py): installed software, rate-limited
    "/api/v1/licenses/validate": _LICENSE_CHECK,
    "/api/v1/licenses/activate": _LICENSE_CHECK,
    "/api/v1/licenses/deactivate": _LICENSE_CHECK,
    "/api/v1/licenses/heartbeat": _LICENSE_CHECK,
    "/api/v1/licenses/checkout": _LICENSE_CHECK,
    "/api/v1/licenses/machine": Access(
        LICENSE_TOKEN, LICENSE_HOLDER, ("get", "patch"), anonymous=(401, "not_authenticated")
    ),
    "/api/v1/licenses/machine/deactivate": Access(
        LICENSE_TOKEN, LICENSE_HOLDER, ("post",), anonymous=(401, "not_authenticated")
    ),
    "/api/v1/licenses/license-file": _LICENSE_CHECK,
    "/api/v1/licenses/offline-activations": Access(USER, PER_ORGANIZATION, ("post",)),
    "/api/v1/licenses/public-key": Access(NO_CREDENTIAL, GLOBAL, ("get",), anonymous=(200, None)),
    # the API's documentation
    "/api/schema/": _DOCS,
    "/api/docs/": _DOCS,
    "/api/redoc/": _DOCS,
    # identity
    "/api/v1/me": Access(USER, PER_USER, ("get", "patch")),
    "/api/v1/organization": Access(USER, PER_ORGANIZATION, ("get", "patch")),
    "/api/v1/invitations/accept": Access(INVITATION, INVITING_ORGANIZATION, ("post",), anonymous=(400, "invalid")),
    # settings: flags evaluated for the caller (targets are users and organizations)
    "/api/v1/flags": Access(USER, PER_USER, ("get",)),
    "/api/v1/sessions/revoke-others": Access(USER, PER_USER, ("post",)),
    # marketplace
    "/api/v1/products/{slug}/releases/latest": Access(USER, GLOBAL, ("get",)),
    "/api/v1/assets/{asset_id}/download/{token}": Access(
        SIGNED_LINK, ASSET_OWNER, ("get",), anonymous=(403, "download_link_invalid")
    ),
    # billing
    "/api/v1/billing/stripe/webhook": Access(
        PROVIDER_SIGNATURE,
        ORDER_OF_THE_EVENT,
        ("post",),
        anonymous=(400, "invalid_signature"),
        probe_settings=(("STRIPE_WEBHOOK_SECRET", "whsec_contract_battery"),),
    ),
    # analytics
    "/api/v1/roi-metrics/export": Access(USER, PER_ORGANIZATION, ("get",)),
    "/api/v1/roi-metrics/summary": Access(USER, PER_ORGANIZATION, ("get",)),
    "/api/v1/telemetry/batch": Access(USER, PER_ORGANIZATION, ("post",)),
    # running a task meters the caller's organization's license (the router's list and create, or
    # a view of its own ahead of the router's: either way declared, for that test)
    "/api/v1/tasks": Access(USER, PER_ORGANIZATION, ("get", "post")),
    # which license pays for the organization's AI gateway calls (operations/api/ai_license.py)
    "/api/v1/ai-license": Access(USER, PER_ORGANIZATION, ("get", "put")),
    "/api/v1/ai-license/keys/{key_id}": Access(USER, PER_ORGANIZATION, ("get", "put")),
    # the OpenAI-compatible gateway (operations/api/gateway.py): metered on the caller's license
    "/v1/chat/completions": Access(API_KEY, PER_ORGANIZATION, ("post",)),
    "/v1/models": Access(API_KEY, GLOBAL, ("get",)),
    # the Anthropic-compatible gateway (operations/api/messages.py): the same metering
    "/v1/messages": Access(API_KEY, PER_ORGANIZATION, ("post",)),
    "/v1/embeddings": Access(API_KEY, PER_ORGANIZATION, ("post",)),
    "/v1/responses": Access(API_KEY, PER_ORGANIZATION, ("post",)),
    # anything else under /api/ and /v1/: the JSON 404
    "/(?:api|v1)/": Access(
        NO_CREDENTIAL,
        GLOBAL,
        ("get", "post", "put", "patch", "delete"),
        anonymous=(404, "not_found"),
        probe="/api/v1/no-such-endpoint",
    ),
}


#: a valid body for the actions that check it before they look their row up (else ``{}`` is sent)
ACTION_BODIES: dict[str, dict] = {
    "/api/v1/webhooks/{pk}/recover": {"since": "2020-01-01T00:00:00Z"},
}


def _template(regex: str) -> str:
    """``api/v1/^products/(?P<slug>[-a-z]+)/releases/latest/?$`` -> ``/api/v1/products/{slug}/releases/latest``."""
    template = regex.replace("^", "").replace("$", "").replace("/?", "")
    template = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", template)
    return "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", template)


@dataclass(frozen=True)
class UrlPattern:
    """One URL pattern of the project, walked from the root URLconf."""

    template: str
    callback: object

    @property
    def view(self):
        """The view class (DRF's or Django's), else the view function."""
        return getattr(self.callback, "cls", None) or getattr(self.callback, "view_class", None) or self.callback

    @property
    def actions(self) -> dict:
        """A router route's ``{method: action}``; empty for any other view."""
        return dict(getattr(self.callback, "actions", None) or {})

    @property
    def extra_actions(self) -> set[str]:
        return set(self.actions.values()) - STANDARD_ACTIONS

    @property
    def is_detail(self) -> bool:
        return "{" in self.template

    @property
    def access(self) -> Access | None:
        return DECLARED.get(self.template)

    @property
    def view_methods(self) -> tuple[str, ...] | None:
        """The HTTP methods the view serves, where its class tells (not for a view function)."""
        if self.actions:  # DRF adds ``head`` to a route's actions at its first GET
            return tuple(sorted(m for m in self.actions if m not in ("options", "head")))
        view = self.view
        if not isinstance(view, type):
            return None
        return tuple(sorted(m for m in view.http_method_names if m not in ("options", "head") and hasattr(view, m)))

    @property
    def methods(self) -> tuple[str, ...]:
        declared = self.access.methods if self.access else None
        return tuple(sorted(declared or self.view_methods or ()))

    @property
    def path(self) -> str:
        """A concrete path that this pattern matches."""
        if self.access and self.access.probe:
            return self.access.probe
        return re.sub(r"\{\w+\}", SAMPLE_PATH_VALUE, self.template)

    def __str__(self):
        return self.template


def url_patterns() -> list[UrlPattern]:
    """Every URL pattern under /api/ and /v1/, walked recursively from the root URLconf: the
    routers', the views outside them and the catch-all."""
    found = []

    def walk(patterns, prefix):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, prefix + str(pattern.pattern))
                continue
            template = _template(prefix + str(pattern.pattern))
            if template.lstrip("/").removeprefix("(?:").startswith(("api/", "v1/", "api|v1")):
                found.append(UrlPattern(template, pattern.callback))

    walk(get_resolver().url_patterns, "")
    return found


def routed_viewsets() -> set[type]:
    return {endpoint.viewset for endpoint in all_endpoints()}


def coverage(pattern: UrlPattern, viewsets: set[type]) -> str:
    """How the battery covers ``pattern``: ``router`` (the list and detail routes of a registered
    viewset), ``detail-action`` (an action on one object of a registered viewset: tested
    generically), ``declared``; else an AssertionError that tells the author what to do."""
    if pattern.access is not None:
        return "declared"
    if pattern.actions:
        if pattern.view not in viewsets:
            raise AssertionError(
                f"{pattern}: {pattern.view.__name__} is served outside an app's api/urls.py router; "
                "register it there (the battery then covers it)"
            )
        if not pattern.extra_actions:
            return "router"
        if pattern.is_detail:
            return "detail-action"
    raise AssertionError(
        f"{pattern}: no test covers this URL. Declare it in tests/api_registry.py DECLARED (its credential, "
        "tenancy and methods) and add its cross-tenant test to tests/test_api_tenancy.py"
    )


@dataclass(frozen=True)
class Route:
    """One URL pattern with a concrete path that resolves to it, and the methods it serves."""

    path: str
    view: object
    methods: tuple[str, ...]
    access: Access | None = None

    @property
    def write_methods(self) -> tuple[str, ...]:
        return tuple(m for m in self.methods if m in WRITE_METHODS)

    def authenticates_api_keys(self) -> bool:
        if self.access is not None:
            return self.access.takes_user_credentials
        view = self.view()
        return any(isinstance(a, ApiKeyAuthentication) for a in view.get_authenticators())

    def __str__(self):
        return self.path


def all_routes() -> list[Route]:
    """Every URL pattern under /api/ and /v1/ with a concrete path that reaches it (a pattern
    shadowed by an earlier one, as ``licenses/<pk>`` by ``licenses/validate``, is left out)."""
    routes = []
    for pattern in url_patterns():
        try:
            match = resolve(pattern.path)
        except Resolver404:
            raise AssertionError(f"cannot build a path for {pattern}") from None
        if match.func is not pattern.callback:
            continue
        routes.append(Route(pattern.path, pattern.view, pattern.methods, pattern.access))
    return routes
