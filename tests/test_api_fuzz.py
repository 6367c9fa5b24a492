"""API fuzzing: schemathesis generates requests from the live OpenAPI schema and sends them, with
an API key of a seeded organization, to the application in-process. No 5xx, and every response
with a documented status must match its documented body."""

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from identity.models import User
from settings_app.services import api_key_create
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
