"""IP control endpoints: machine bindings, validation attempts and collisions (read-only).

Authentication, tenant isolation, roles and scopes are covered for every endpoint by
tests/test_api_contract.py; these tests are about each endpoint's own behaviour.
"""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from identity.models import User
from ipcontrol.models import LicenseCollision
from tests import factories as f
from tests.clients import client_as

pytestmark = pytest.mark.django_db


def _ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


@pytest.fixture
def viewer():
    return f.UserFactory(role=User.Role.VIEWER)


@pytest.fixture
def license(viewer):
    return f.LicenseFactory(organization=viewer.organization)


def test_bindings_filter_by_license_and_activity(viewer, license):
    active = f.LicenseIpBindingFactory(license=license)
    inactive = f.LicenseIpBindingFactory(license=license, is_active=False)
    f.LicenseIpBindingFactory(license=f.LicenseFactory(organization=viewer.organization))
    client = client_as(viewer)
    assert set(_ids(client.get(f"/api/v1/license-bindings?license={license.pk}"))) == {str(active.pk), str(inactive.pk)}
    assert _ids(client.get(f"/api/v1/license-bindings?license={license.pk}&is_active=false")) == [str(inactive.pk)]
    assert client.get("/api/v1/license-bindings?license=nope").status_code == 400


def test_validations_filter_and_page_by_cursor(viewer, license):
    now = timezone.now()
    old_failure = f.LicenseValidationFactory(
        license=license, is_valid=False, result_code="TOO_MANY_MACHINES", created_at=now - timedelta(days=3)
    )
    recent = [f.LicenseValidationFactory(license=license, created_at=now - timedelta(minutes=i)) for i in range(3)]
    client = client_as(viewer)

    assert _ids(client.get("/api/v1/license-validations?is_valid=false")) == [str(old_failure.pk)]
    assert _ids(client.get("/api/v1/license-validations?result_code=TOO_MANY_MACHINES")) == [str(old_failure.pk)]
    since = (now - timedelta(days=1)).isoformat().replace("+00:00", "Z")
    assert _ids(client.get("/api/v1/license-validations", {"created_at_after": since})) == [str(v.pk) for v in recent]

    first = client.get("/api/v1/license-validations?page_size=2").json()
    assert "count" not in first and [row["id"] for row in first["results"]] == [str(v.pk) for v in recent[:2]]
    second = client.get(first["next"]).json()
    assert [row["id"] for row in second["results"]] == [str(recent[2].pk), str(old_failure.pk)]


def test_validations_of_unknown_keys_belong_to_no_organization(viewer):
    f.LicenseValidationFactory(license=None, organization=None, is_valid=False, result_code="NOT_FOUND")
    assert _ids(client_as(viewer).get("/api/v1/license-validations")) == []


def test_collisions_show_both_machines_and_filter_open_ones(viewer, license):
    open_collision = f.LicenseCollisionFactory(license=license, severity=LicenseCollision.Severity.CRITICAL)
    resolved = f.LicenseCollisionFactory(
        license=license,
        collision_type=LicenseCollision.CollisionType.CLONED_MACHINE,
        resolved_at=timezone.now(),
        auto_resolved=True,
    )
    client = client_as(viewer)

    assert _ids(client.get("/api/v1/license-collisions?open=true")) == [str(open_collision.pk)]
    assert _ids(client.get("/api/v1/license-collisions?open=false")) == [str(resolved.pk)]
    assert _ids(client.get("/api/v1/license-collisions?severity=critical")) == [str(open_collision.pk)]
    assert _ids(client.get("/api/v1/license-collisions?collision_type=cloned_machine")) == [str(resolved.pk)]

    body = client.get(f"/api/v1/license-collisions/{open_collision.pk}").json()
    assert body["ip_binding_a"]["machine_id"] == open_collision.ip_binding_a.machine_id
    assert body["ip_binding_b"]["id"] == str(open_collision.ip_binding_b_id)


def test_collisions_list_runs_a_constant_number_of_queries(viewer, license):
    def queries_for(count: int) -> int:
        LicenseCollision.objects.all().delete()
        f.LicenseCollisionFactory.create_batch(count, license=license)
        with CaptureQueriesContext(connection) as captured:
            response = client_as(viewer).get("/api/v1/license-collisions?page_size=100")
        assert len(response.json()["results"]) == count
        return len(captured)

    assert queries_for(5) == queries_for(50)
