"""API fuzzing: schemathesis generates requests from the live OpenAPI schema and sends them, with
an API key of a seeded organization, to the application in-process. No 5xx, and every response
with a documented status must match its documented body."""

import json
import re
import uuid

import pytest
import schemathesis
from django.conf import settings as settings_module
from django.core.wsgi import get_wsgi_application
from django.urls import resolve
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from identity.models import User
from settings_app.services.api_keys import api_key_create
from tests.factories import (
    LicenseFactory,
    OrganizationFactory,
    ProcessedTaskFactory,
    RoiMetricFactory,
    UserFactory,
    WebhookFactory,
)

schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())


@pytest.fixture
def keep_test_connection():
    """Like Django's test client: requests must not close the connection holding the test's
    transaction."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def api_key(transactional_db, keep_test_connection):
    organization = OrganizationFactory(max_users=50, settings={"country": "ES", "currency": "EUR"})
    owner = UserFactory(organization=organization, role=User.Role.OWNER)
    LicenseFactory(organization=organization)
    ProcessedTaskFactory(organization=organization, user=owner)
    RoiMetricFactory(organization=organization)
    WebhookFactory(organization=organization, user=owner)
    return api_key_create(user=owner, name="fuzz", rate_limit_rpm=100_000).raw_key


# Real commits, as in production (no request-wide transaction): a refused statement must not
# poison the requests that follow it.
@pytest.mark.django_db(transaction=True)
@schema.parametrize()
@settings(
    max_examples=3,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_api_never_fails_and_keeps_its_schema(case, api_key):
    case.headers = {**(case.headers or {}), "Authorization": f"Bearer {api_key}"}
    case.call_and_validate(checks=[not_a_server_error, response_schema_conformance])


# --- Hostile input, every operation ---------------------------------------------------------
# The generative run above draws from the schema's own types; the classes of input an attacker
# sends on purpose are sent here to every operation the schema documents, so a new endpoint is
# covered the day it is documented: JSON nested past any sane depth, lone UTF-16 surrogates (in
# values and in keys), a body over the endpoint's cap, and malformed values in every query
# parameter (filters, ordering, search, pagination). None may get a 5xx; each refusal is a 4xx in
# the one error shape.

_DOCUMENT = schema.raw_schema
_OPERATIONS = [
    (path, method.upper(), operation)
    for path, item in _DOCUMENT["paths"].items()
    for method, operation in item.items()
    if method in {"get", "post", "put", "patch", "delete"}
]
_DEEP = "[" * 400 + "]" * 400
_QUERY_ATTACKS = ("%ED%A0%80", "%00", "abc", "9" * 40, "-1", "1e999", "%ZZ")


def _body_properties(operation) -> list[str]:
    content = operation.get("requestBody", {}).get("content", {})
    body = content.get("application/json") or content.get("multipart/form-data") or {}
    ref = body.get("schema", {}).get("$ref", "")
    component = _DOCUMENT["components"]["schemas"].get(ref.rpartition("/")[2], {}) if ref else body.get("schema", {})
    return sorted(component.get("properties", {})) or ["value"]


def _filled(path: str) -> str:
    return re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path)


def _assert_refused_cleanly(response, *, expected=None):
    assert response.status_code < 500, (response.status_code, response.content[:300])
    if expected is not None:
        assert response.status_code in expected, (response.status_code, response.content[:300])
    if response.status_code >= 400 and response.get("Content-Type", "").startswith("application/json"):
        assert set(response.json()["error"]) >= {"code", "message"}


@pytest.fixture
def hostile_key(db):
    organization = OrganizationFactory(max_users=50)
    owner = UserFactory(organization=organization, role=User.Role.OWNER)
    LicenseFactory(organization=organization)
    return api_key_create(user=owner, name="hostile", rate_limit_rpm=1_000_000).raw_key


@pytest.mark.parametrize(("path", "method", "operation"), _OPERATIONS, ids=[f"{m} {p}" for p, m, _ in _OPERATIONS])
def test_every_operation_refuses_hostile_input_with_a_4xx(client, hostile_key, path, method, operation):
    url = _filled(path)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {hostile_key}"}
    if "requestBody" in operation:
        names = _body_properties(operation)
        deep = "{" + ", ".join(f'"{name}": {_DEEP}' for name in names) + "}"
        surrogates = json.dumps({**{name: "a\ud800b" for name in names}, "\udc00": 1})
        for body in (deep, surrogates, "[" * 5000 + "]" * 5000):
            response = client.generic(method, url, body, content_type="application/json", **auth)
            # A refusal before the body is read (no such object, not allowed) is fine too.
            _assert_refused_cleanly(response, expected={400, 401, 403, 404, 405, 415})
            if response.status_code == 400:
                assert response.json()["error"]["code"] in {"malformed_request", "invalid"}
        view = resolve(url).func
        cap = getattr(getattr(view, "cls", None), "max_request_bytes", None) or settings_module.API_MAX_REQUEST_BYTES
        response = client.generic(method, url, b"x" * (cap + 1), content_type="application/json", **auth)
        _assert_refused_cleanly(response, expected={413})
    for parameter in operation.get("parameters", []):
        if parameter["in"] != "query":
            continue
        for value in _QUERY_ATTACKS:
            response = client.generic(method, f"{url}?{parameter['name']}={value}", **auth)
            _assert_refused_cleanly(response)
