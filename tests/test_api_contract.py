"""The same battery for every endpoint the routers declare: authentication required, tenant
isolation, roles and API key scopes. Endpoints are discovered, not listed, so a new one is covered
the day it is registered. Every other URL pattern under /api/ and /v1/ is walked from the root
URLconf and must be declared in tests/api_registry.py (credential, tenancy, methods); the
declarations are checked here and their cross-tenant tests are in tests/test_api_tenancy.py."""

import pytest
from rest_framework.test import APIClient

from identity.models import User
from settings_app.services.api_keys import api_key_create
from tests import factories as f
from tests.api_registry import (
    ACTION_BODIES,
    DECLARED,
    NO_CREDENTIAL,
    USER_CREDENTIALS,
    UrlPattern,
    all_endpoints,
    all_routes,
    coverage,
    make_row,
    routed_viewsets,
    url_patterns,
)
from tests.clients import client_as

ENDPOINTS = all_endpoints()
TENANT = [e for e in ENDPOINTS if e.kind == "tenant"]
OWN = [e for e in ENDPOINTS if e.kind == "own"]
CATALOG = [e for e in ENDPOINTS if e.kind == "catalog"]
STAFF = [e for e in ENDPOINTS if e.kind == "staff"]
WRITE_ACTIONS = [("partial_update", "patch"), ("update", "put"), ("destroy", "delete")]

pytestmark = pytest.mark.django_db


def _ids(endpoints):
    return [str(e) for e in endpoints]


def _key_client(user, scopes):
    issued = api_key_create(user=user, name="contract", scopes=scopes)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.raw_key}")
    return client


def _listed_ids(response):
    assert response.status_code == 200, response.content
    rows = response.json()["results"] if isinstance(response.json(), dict) else response.json()
    return {str(row.get("id", row.get("key"))) for row in rows}


@pytest.fixture
def org_a():
    return f.OrganizationFactory(slug="tenant-a", max_users=50)


@pytest.fixture
def org_b():
    return f.OrganizationFactory(slug="tenant-b", max_users=50)


@pytest.fixture
def owner_a(org_a):
    return f.UserFactory(organization=org_a, role=User.Role.OWNER)


@pytest.fixture
def owner_b(org_b):
    return f.UserFactory(organization=org_b, role=User.Role.OWNER)


def test_every_endpoint_is_discovered():
    assert len(ENDPOINTS) >= 1
    for endpoint in ENDPOINTS:
        assert endpoint.kind in {"tenant", "own", "catalog", "staff"}
        assert endpoint.viewset.scope_resource == endpoint.prefix, f"{endpoint}: scope_resource must match the URL"


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=_ids(ENDPOINTS))
def test_unauthenticated_is_401(endpoint):
    response = APIClient().get(endpoint.list_url())
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


@pytest.mark.parametrize("endpoint", TENANT, ids=_ids(TENANT))
def test_another_organizations_rows_are_invisible(endpoint, owner_a, owner_b):
    mine = make_row(endpoint.model, organization=owner_a.organization, user=owner_a)
    theirs = make_row(endpoint.model, organization=owner_b.organization, user=owner_b)
    client = client_as(owner_a)

    listed = _listed_ids(client.get(endpoint.list_url()))
    assert str(mine.pk) in listed
    assert str(theirs.pk) not in listed

    if endpoint.supports("retrieve"):
        assert client.get(endpoint.detail_url(mine)).status_code == 200
        assert client.get(endpoint.detail_url(theirs)).status_code == 404
    for action, method in WRITE_ACTIONS:
        if endpoint.supports(action):
            response = getattr(client, method)(endpoint.detail_url(theirs), {}, format="json")
            assert response.status_code == 404, f"{method.upper()} {endpoint}: {response.status_code}"
    assert type(theirs)._base_manager.filter(pk=theirs.pk).exists()


@pytest.mark.parametrize("endpoint", OWN, ids=_ids(OWN))
def test_another_users_rows_are_invisible(endpoint, owner_a):
    colleague = f.UserFactory(organization=owner_a.organization, role=User.Role.ADMIN)
    mine = make_row(endpoint.model, organization=owner_a.organization, user=owner_a)
    theirs = make_row(endpoint.model, organization=owner_a.organization, user=colleague)
    client = client_as(owner_a)

    listed = _listed_ids(client.get(endpoint.list_url()))
    assert str(mine.pk) in listed and str(theirs.pk) not in listed
    if endpoint.supports("retrieve"):
        assert client.get(endpoint.detail_url(theirs)).status_code == 404
    if endpoint.supports("destroy"):
        assert client.delete(endpoint.detail_url(theirs)).status_code == 404


@pytest.mark.parametrize("endpoint", TENANT + OWN + CATALOG, ids=_ids(TENANT + OWN + CATALOG))
def test_viewer_cannot_write(endpoint, org_a):
    viewer = f.UserFactory(organization=org_a, role=User.Role.VIEWER)
    row = make_row(endpoint.model, organization=org_a, user=viewer)
    client = client_as(viewer)
    if endpoint.supports("create"):
        assert client.post(endpoint.list_url(), {}, format="json").status_code == 403
    for action, method in WRITE_ACTIONS:
        if endpoint.supports(action):
            response = getattr(client, method)(endpoint.detail_url(row), {}, format="json")
            assert response.status_code in (403, 404), f"{method.upper()} {endpoint}: {response.status_code}"
            assert response.status_code != 404 or endpoint.kind == "catalog"


@pytest.mark.parametrize("endpoint", TENANT + OWN + CATALOG, ids=_ids(TENANT + OWN + CATALOG))
def test_api_key_needs_a_scope_for_the_resource(endpoint, owner_a):
    make_row(endpoint.model, organization=owner_a.organization, user=owner_a)
    assert _key_client(owner_a, ["unrelated:read"]).get(endpoint.list_url()).status_code == 403
    denied = _key_client(owner_a, [f"{endpoint.prefix}:read"]).get(endpoint.list_url())
    read_roles = endpoint.viewset.read_roles
    assert denied.status_code == (200 if User.Role.OWNER in read_roles else 403)
    if endpoint.supports("create"):
        response = _key_client(owner_a, [f"{endpoint.prefix}:read"]).post(endpoint.list_url(), {}, format="json")
        assert response.status_code == 403


@pytest.mark.parametrize("endpoint", CATALOG, ids=_ids(CATALOG))
def test_catalog_is_readable_by_customers_and_written_by_staff_only(endpoint, owner_a):
    client = client_as(owner_a)
    assert client.get(endpoint.list_url()).status_code == 200
    if endpoint.supports("create"):
        response = client.post(endpoint.list_url(), {}, format="json")
        assert response.status_code == 403
        staff_response = client_as(f.StaffUserFactory()).post(endpoint.list_url(), {}, format="json")
        assert staff_response.status_code == 400  # allowed in, then validated
        assert staff_response.json()["error"]["code"] == "invalid"


@pytest.mark.parametrize("endpoint", STAFF, ids=_ids(STAFF))
def test_staff_endpoints_refuse_customers(endpoint, owner_a):
    assert client_as(owner_a).get(endpoint.list_url()).status_code == 403
    row = make_row(endpoint.model, organization=owner_a.organization, user=owner_a)
    staff = client_as(f.StaffUserFactory())
    response = staff.get(endpoint.list_url())
    assert response.status_code == 200
    if endpoint.supports("retrieve"):
        assert staff.get(endpoint.detail_url(row)).status_code == 200


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=_ids(ENDPOINTS))
def test_trailing_slash_gives_the_same_answer(endpoint, owner_a):
    client = client_as(f.StaffUserFactory() if endpoint.kind == "staff" else owner_a)
    plain = client.get(endpoint.list_url())
    slashed = client.get(endpoint.list_url() + "/")
    assert plain.status_code == slashed.status_code == 200
    assert plain.json() == slashed.json()


def _queries_for_list(client, url):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, {"page_size": 50})
    assert response.status_code == 200, response.content
    return len(queries)


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=_ids(ENDPOINTS))
def test_list_query_count_does_not_grow_with_rows(endpoint, owner_a):
    user = owner_a
    client = client_as(f.StaffUserFactory() if endpoint.kind == "staff" else owner_a)
    for _ in range(2):
        make_row(endpoint.model, organization=owner_a.organization, user=user)
    few = _queries_for_list(client, endpoint.list_url())
    for _ in range(8):
        make_row(endpoint.model, organization=owner_a.organization, user=user)
    many = _queries_for_list(client, endpoint.list_url())
    assert many == few, f"{endpoint}: {few} queries for 2 rows, {many} for 10"


# --- malformed query parameters ------------------------------------------------------------------
# Every filter of every list, and the ordering, search and paging parameters, given a value that
# is not what they take, answer 400 (or ignore it: 200), never 500.

MALFORMED = [
    "abc", "\x00", "9" * 40, "%ED%A0%80", "1e999", "not-a-uuid", "-1", "2026-13-45T99:99",
    "2026-01-01T00:00:00+23:00",  # an offset Python accepts and PostgreSQL does not
]  # fmt: skip
#: values a typed (not free-text) filter must refuse
REFUSED_BY_TYPED = ["abc", "\x00", "not-a-uuid"]


def _filterset(endpoint):
    return getattr(endpoint.viewset, "filterset_class", None)


def _filter_params(filterset_class):
    """``(query parameter, form field)`` for every filter: a from/to range is two parameters."""
    form = filterset_class().form
    params = []
    for name, field in form.fields.items():
        suffixes = getattr(field.widget, "suffixes", None)
        names = [f"{name}_{suffix}" if suffix else name for suffix in suffixes] if suffixes else [name]
        params.extend((param, field) for param in names)
    return params


def _is_free_text(field) -> bool:
    """Text filters take any string; every other type has malformed values to refuse."""
    from django import forms

    from celaest.api.filters import StrictBooleanField

    typed = (
        forms.UUIDField, forms.GenericIPAddressField, forms.ChoiceField, forms.DecimalField, forms.IntegerField,
        forms.FloatField, forms.DateField, forms.DateTimeField, forms.TimeField, forms.DurationField,
        forms.MultiValueField, forms.NullBooleanField, StrictBooleanField,
    )  # fmt: skip
    return not isinstance(field, typed)


def _query(url, param, value):
    from urllib.parse import quote

    # a raw percent sequence (a lone UTF-16 surrogate in UTF-8) is sent as it is
    encoded = value if value.startswith("%") else quote(value, safe="")
    return f"{url}?{quote(param)}={encoded}"


def _get(client, url):
    """One request in a savepoint: a statement the database refused (and the handler answered)
    must not abort the test's transaction for the requests after it."""
    from django.db import transaction

    savepoint = transaction.savepoint()
    try:
        return client.get(url)
    finally:
        transaction.savepoint_rollback(savepoint)


def _reached_the_database(response) -> bool:
    # celaest.errors answers a DataError (the database refused a value) with this message
    return response.status_code == 400 and "supported range" in response.json()["error"]["message"]


def _list_client(endpoint, owner):
    return client_as(f.StaffUserFactory() if endpoint.kind == "staff" else owner)


FILTERED = [e for e in ENDPOINTS if _filterset(e) is not None]


@pytest.mark.parametrize("endpoint", FILTERED, ids=_ids(FILTERED))
def test_filters_derive_from_the_validating_base(endpoint):
    from celaest.api.filters import ApiFilterSet

    assert issubclass(_filterset(endpoint), ApiFilterSet), f"{endpoint}: filtersets derive from ApiFilterSet"


@pytest.mark.parametrize("endpoint", FILTERED, ids=_ids(FILTERED))
def test_malformed_filter_values_are_refused_not_500(endpoint, owner_a):
    make_row(endpoint.model, organization=owner_a.organization, user=owner_a)
    client = _list_client(endpoint, owner_a)
    failures = []
    for param, field in _filter_params(_filterset(endpoint)):
        for value in MALFORMED:
            response = _get(client, _query(endpoint.list_url(), param, value))
            if response.status_code not in (200, 400) or _reached_the_database(response):
                failures.append(f"?{param}={value!r}: {response.status_code} {response.content[:200]}")
            elif response.status_code == 400 and response.json()["error"]["code"] != "invalid":
                failures.append(f"?{param}={value!r}: {response.json()}")
        if not _is_free_text(field):
            for value in REFUSED_BY_TYPED:
                response = _get(client, _query(endpoint.list_url(), param, value))
                if response.status_code != 400:
                    failures.append(f"?{param}={value!r} ({type(field).__name__}): {response.status_code}, not 400")
                elif not any(key in param for key in response.json()["error"]["details"]):
                    failures.append(f"?{param}={value!r}: the error does not name the parameter")
    assert not failures, failures


PAGING_AND_ORDERING = [
    ("ordering", "nonexistent"),
    ("ordering", "-\x00"),
    ("ordering", "password,key_hash"),
    ("search", "\x00"),
    ("search", "%ED%A0%80"),
    ("search", "x" * 5000),
    ("page", "abc"),
    ("page", "0"),
    ("page", "9" * 40),
    ("page_size", "-1"),
    ("page_size", "abc"),
    ("page_size", "9" * 40),
    ("cursor", "garbage"),
    ("cursor", "cD1hYmM="),  # p=abc: a position that is not a time
    ("cursor", "bz05OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5"),  # an offset past any integer
    ("cursor", "cD0lMDA="),  # p=NUL
]


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=_ids(ENDPOINTS))
def test_paging_ordering_and_search_never_fail(endpoint, owner_a):
    make_row(endpoint.model, organization=owner_a.organization, user=owner_a)
    client = _list_client(endpoint, owner_a)
    failures = []
    for param, value in PAGING_AND_ORDERING:
        response = _get(client, _query(endpoint.list_url(), param, value))
        if response.status_code not in (200, 400, 404):
            failures.append(f"?{param}={value[:20]!r}: {response.status_code}")
        elif response.status_code != 200 and "error" not in response.json():
            failures.append(f"?{param}={value[:20]!r}: {response.json()}")
    assert not failures, failures


# --- every URL pattern: covered by the router battery or declared --------------------------------

PATTERNS = url_patterns()
VIEWSETS = routed_viewsets()
#: the pattern that answers each declared path (the first one: a later one of the same path is shadowed)
DECLARED_PATTERNS = list({p.template: p for p in reversed(PATTERNS) if p.access is not None}.values())[::-1]


def _pattern_ids(patterns):
    return [p.template for p in patterns]


def _send(client, method, path, body=None):
    if method == "get":
        return client.get(path)
    return getattr(client, method)(path, body or {}, format="json")


def _assert_error(response, status, code):
    assert response.status_code == status, f"{response.status_code}, not {status}: {response.content[:300]}"
    if code is None:
        return
    body = response.json()
    # the gateway (/v1/) adds its protocol's error ``type`` (and OpenAI's ``param``), which the SDKs read
    path = response.request.get("PATH_INFO", "")
    protocol = {"type", "param"} if path.startswith("/v1/") else set()
    if path.startswith("/v1/messages"):  # Anthropic's: {"type": "error", "error": {"type", "message"}}
        protocol = {"type"}
        assert body.pop("type") == "error", body
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"} | protocol, body
    assert body["error"]["code"] == code, body


def test_every_url_pattern_is_covered_or_declared():
    failures = []
    for pattern in PATTERNS:
        try:
            coverage(pattern, VIEWSETS)
        except AssertionError as exc:
            failures.append(str(exc))
    assert not failures, "\n".join(failures)
    walked = {p.template for p in PATTERNS}
    assert set(DECLARED) <= walked, f"declared but served nowhere: {sorted(set(DECLARED) - walked)}"


def test_the_walk_reaches_every_kind_of_url():
    templates = {p.template for p in PATTERNS}
    assert {e.list_url() for e in ENDPOINTS} <= templates
    assert {
        "/api/v1/me", "/api/v1/organization", "/api/v1/flags", "/api/v1/products/{slug}/releases/latest",
        "/api/v1/assets/{asset_id}/download/{token}", "/api/v1/billing/stripe/webhook",
        "/api/v1/licenses/validate", "/api/v1/licenses/activate", "/api/v1/licenses/deactivate",
        "/api/v1/licenses/checkout", "/api/v1/licenses/public-key", "/v1/chat/completions", "/v1/models",
    } <= templates  # fmt: skip
    assert {coverage(p, VIEWSETS) for p in PATTERNS} == {"router", "detail-action", "declared"}


def test_an_undeclared_view_or_unrouted_viewset_fails_the_walk():
    from identity.api.views import MemberViewSet

    def view(request):
        raise AssertionError("never called")

    with pytest.raises(AssertionError, match="Declare it in tests/api_registry.py"):
        coverage(UrlPattern("/api/v1/something-new", view), VIEWSETS)
    with pytest.raises(AssertionError, match="Declare it"):
        listed = MemberViewSet.as_view({"post": "bulk_invite"})
        coverage(UrlPattern("/api/v1/members/bulk-invite", listed), VIEWSETS)

    class Unrouted(MemberViewSet):
        pass

    with pytest.raises(AssertionError, match="register it there"):
        coverage(UrlPattern("/api/v1/unrouted", Unrouted.as_view({"get": "list"})), VIEWSETS)


@pytest.mark.parametrize("pattern", DECLARED_PATTERNS, ids=_pattern_ids(DECLARED_PATTERNS))
def test_a_declaration_matches_its_view(pattern):
    from rest_framework.views import APIView

    from settings_app.authentication import ApiKeyAuthentication

    access = pattern.access
    assert access.anonymous_answer is not None, f"{pattern}: declare what a caller without a credential gets"
    serving = [p for p in PATTERNS if p.template == pattern.template]  # a view and the router's it shadows
    if all(p.view_methods is not None for p in serving):
        methods = sorted({m for p in serving for m in p.view_methods})
        assert methods == sorted(access.methods), f"{pattern} serves {methods}"
    for view in {p.view for p in serving}:
        if isinstance(view, type) and issubclass(view, APIView):
            authenticators = view().get_authenticators()
            if access.takes_user_credentials:
                assert any(isinstance(a, ApiKeyAuthentication) for a in authenticators)
            elif access.credential != NO_CREDENTIAL:
                assert authenticators == [], f"{pattern}: its credential is a {access.credential}, not a user's"


ANONYMOUS = [(p, m) for p in DECLARED_PATTERNS for m in p.access.methods]


@pytest.mark.parametrize(("pattern", "method"), ANONYMOUS, ids=[f"{m.upper()} {p}" for p, m in ANONYMOUS])
def test_a_caller_without_a_credential_gets_the_declared_answer(pattern, method, settings):
    for name, value in pattern.access.probe_settings:
        setattr(settings, name, value)
    status, code = pattern.access.anonymous_answer
    _assert_error(_send(APIClient(), method, pattern.path), status, code)


NOT_A_USERS = [p for p in DECLARED_PATTERNS if p.access.credential not in USER_CREDENTIALS | {NO_CREDENTIAL}]


@pytest.mark.parametrize("pattern", NOT_A_USERS, ids=_pattern_ids(NOT_A_USERS))
def test_a_user_credential_sent_along_changes_nothing(pattern, owner_a, settings):
    """A route whose credential is a license key, a signed link or a signature answers alike
    whoever is signed in: a user's key neither opens it nor turns it into a 401."""
    for name, value in pattern.access.probe_settings:
        setattr(settings, name, value)
    method = pattern.access.methods[0]
    anonymous = _send(APIClient(), method, pattern.path)
    bogus = APIClient()
    bogus.credentials(HTTP_AUTHORIZATION="Bearer cel_not-a-key")
    signed_in = _key_client(owner_a, ["*"])
    for client in (bogus, signed_in):
        response = _send(client, method, pattern.path)
        assert (response.status_code, response.content) == (anonymous.status_code, anonymous.content)


KEYS_ONLY = [(p, m) for p in DECLARED_PATTERNS if p.access.credential == "api-key" for m in p.access.methods]


@pytest.mark.parametrize(("pattern", "method"), KEYS_ONLY, ids=[f"{m.upper()} {p}" for p, m in KEYS_ONLY])
def test_an_api_key_only_route_refuses_a_session(pattern, method, owner_a):
    client = APIClient()
    client.force_login(owner_a)
    _assert_error(_send(client, method, pattern.path), 401, "not_authenticated")


GLOBAL_READS = [
    p for p in DECLARED_PATTERNS if not p.access.tenant_scoped and "get" in p.access.methods and "{" not in p.template
]


@pytest.mark.parametrize("pattern", GLOBAL_READS, ids=_pattern_ids(GLOBAL_READS))
def test_a_global_route_answers_every_tenant_alike(pattern, owner_a, owner_b):
    clients = [_key_client(owner_a, ["*"]), _key_client(owner_b, ["*"])]
    if pattern.access.credential == NO_CREDENTIAL:
        clients.append(APIClient())
    answers = [(r.status_code, r.content) for r in (c.get(pattern.path) for c in clients)]
    expected = 200 if pattern.access.takes_user_credentials else pattern.access.anonymous_answer[0]
    assert answers[0][0] == expected, answers[0]
    assert all(answer == answers[0] for answer in answers), pattern


# --- actions on one object of a routed viewset -------------------------------------------------
# Walked, not listed: a new @action(detail=True) is held to the viewset's scoping the day it exists.

_ENDPOINT_OF = {endpoint.viewset: endpoint for endpoint in ENDPOINTS}


def _coverage_or_none(pattern):
    try:
        return coverage(pattern, VIEWSETS)
    except AssertionError:
        return None  # test_every_url_pattern_is_covered_or_declared says why


DETAIL_ACTIONS = [(p, m) for p in PATTERNS if _coverage_or_none(p) == "detail-action" for m in p.methods]


def _row_state(row):
    return type(row)._base_manager.filter(pk=row.pk).values().get()


def _action_url(pattern, endpoint, row):
    import re

    return re.sub(r"\{\w+\}", str(getattr(row, endpoint.viewset.lookup_field)), pattern.template)


@pytest.mark.parametrize(("pattern", "method"), DETAIL_ACTIONS, ids=[f"{m.upper()} {p}" for p, m in DETAIL_ACTIONS])
def test_an_action_never_reaches_another_tenants_row(pattern, method, owner_a, owner_b):
    endpoint = _ENDPOINT_OF[pattern.view]
    client = client_as(owner_a)
    body = ACTION_BODIES.get(pattern.template)
    if endpoint.kind == "own":
        colleague = f.UserFactory(organization=owner_a.organization, role=User.Role.ADMIN)
        theirs = make_row(endpoint.model, organization=owner_a.organization, user=colleague)
    else:
        theirs = make_row(endpoint.model, organization=owner_b.organization, user=owner_b)
    mine = make_row(endpoint.model, organization=owner_a.organization, user=owner_a)
    before = _row_state(theirs)

    response = _send(client, method, _action_url(pattern, endpoint, theirs), body)
    if endpoint.kind in ("catalog", "staff"):
        _assert_error(response, 403, "permission_denied")  # customers never change the catalogue
    elif response.status_code == 403:
        # refused whatever the row (a staff-only action): the answer must not depend on whose it is
        _assert_error(_send(client, method, _action_url(pattern, endpoint, mine), body), 403, "permission_denied")
    else:
        assert response.status_code != 400, f"{pattern} checks its body first: give a valid one in ACTION_BODIES"
        _assert_error(response, 404, "not_found")
        own = _send(client, method, _action_url(pattern, endpoint, mine), body)
        assert own.status_code != 404 or own.json()["error"]["code"] != "not_found", f"{pattern}: own row not found"
    assert _row_state(theirs) == before, f"{method.upper()} {pattern} changed another tenant's row"


# --- API key scopes on every route ---------------------------------------------------------------
# Walked from the URLconf, so views that are not routed viewsets (/me, /organization, the gateway)
# are held to the same rule: a key needs ``<resource>:write`` to write, whatever the view lists.

KEYED_ROUTES = [r for r in all_routes() if r.authenticates_api_keys()]
KEYED_WRITES = [(r, m) for r in KEYED_ROUTES for m in r.write_methods]


def test_the_route_walk_finds_the_views_that_are_not_viewsets():
    paths = {route.path for route in KEYED_ROUTES}
    assert {"/api/v1/me", "/api/v1/organization", "/v1/chat/completions", "/v1/models"} <= paths
    assert len(KEYED_WRITES) > len(ENDPOINTS)


@pytest.mark.parametrize(("route", "method"), KEYED_WRITES, ids=[f"{m.upper()} {r}" for r, m in KEYED_WRITES])
def test_a_key_without_the_write_scope_cannot_write(route, method, owner_a):
    resource = getattr(route.view, "scope_resource", "")
    read_only = _key_client(owner_a, [f"{resource}:read" if resource else "unrelated:read", "licenses:read"])
    response = getattr(read_only, method)(route.path, {}, format="json")
    assert response.status_code == 403, f"{method.upper()} {route}: {response.status_code} {response.content[:200]}"
    assert response.json()["error"]["code"] == "permission_denied"


@pytest.mark.parametrize("route", KEYED_ROUTES, ids=_ids(KEYED_ROUTES))
def test_a_route_closed_to_anonymous_callers_needs_a_scope_to_read(route, owner_a):
    from rest_framework.permissions import AllowAny

    if not {"get"} & set(route.methods) or AllowAny in getattr(route.view, "permission_classes", ()):
        pytest.skip("no read, or its credential is not an API key (a signed link, the docs)")
    if getattr(route.view, "key_reads_open", False):
        assert _key_client(owner_a, ["unrelated:read"]).get(route.path).status_code == 200
        return
    response = _key_client(owner_a, ["unrelated:read"]).get(route.path)
    assert response.status_code == 403, f"GET {route}: {response.status_code}"
