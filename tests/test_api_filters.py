"""The validating filter base (``celaest.api.filters.ApiFilterSet``) on the filters that used to
fail: values are checked against the column's type and refused with a 400 naming the parameter;
well-formed values still filter. The contract battery sends malformed values to every filter."""

from datetime import timedelta, timezone

import pytest
from rest_framework.test import APIClient

from identity.models import User
from tests import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner():
    return f.UserFactory(organization=f.OrganizationFactory(), role=User.Role.OWNER)


@pytest.fixture
def client(owner):
    client = APIClient()
    client.force_authenticate(owner)
    return client


def _refused(response, param):
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid" and param in error["details"], error
    return error


@pytest.mark.parametrize("url", ["/api/v1/license-bindings", "/api/v1/license-validations"])
def test_an_ip_address_filter_refuses_what_is_not_an_address(client, url):
    # It reached psycopg's Inet, which raised ValueError: a 500.
    _refused(client.get(url, {"ip_address": "abc"}), "ip_address")


def test_an_ip_address_filter_matches_the_stored_form(client, owner):
    license_ = f.LicenseFactory(organization=owner.organization)
    v6 = f.LicenseIpBindingFactory(license=license_, ip_address="2001:db8::1")
    f.LicenseIpBindingFactory(license=license_, ip_address="198.51.100.10")
    response = client.get("/api/v1/license-bindings", {"ip_address": "2001:0DB8:0:0::1"})
    assert response.status_code == 200
    assert [row["id"] for row in response.json()["results"]] == [str(v6.pk)]


def test_a_boolean_filter_refuses_a_word_it_does_not_know(client, owner):
    # Read as "no filter", a typo answered every row.
    f.WebhookFactory(organization=owner.organization, user=owner)
    _refused(client.get("/api/v1/members", {"is_active": "flase"}), "is_active")
    _refused(client.get("/api/v1/licenses", {"expires_at__isnull": "maybe"}), "expires_at__isnull")
    _refused(client.get("/api/v1/license-collisions", {"open": "yes please"}), "open")
    assert client.get("/api/v1/members", {"is_active": "False"}).json()["results"] == []
    assert len(client.get("/api/v1/members", {"is_active": "1"}).json()["results"]) == 1


def test_an_in_filter_on_a_choice_column_refuses_an_unknown_choice(client, owner):
    license_ = f.LicenseFactory(organization=owner.organization)
    _refused(client.get("/api/v1/licenses", {"status__in": "active,bogus"}), "status__in")
    response = client.get("/api/v1/licenses", {"status__in": "active,revoked"})
    assert [row["id"] for row in response.json()["results"]] == [str(license_.pk)]


def test_a_whole_number_filter_refuses_a_fraction(client):
    _refused(client.get("/api/v1/product-reviews", {"rating": "4.5"}), "rating")


def test_times_with_an_offset_postgresql_refuses_are_a_field_error(client, owner):
    # Python reads +23:00; PostgreSQL refuses offsets past 15:59 (it was a DataError).
    error = _refused(client.get("/api/v1/tasks", {"created_at__gte": "2026-01-01T00:00:00+23:00"}), "created_at__gte")
    assert "15:59" in str(error["details"])
    _refused(client.get("/api/v1/license-validations", {"created_at_after": "2026-01-01T00:00:00-20:00"}), "created_at")


def test_times_are_compared_in_utc(client, owner):
    license_ = f.LicenseFactory(organization=owner.organization)
    in_new_york = license_.expires_at.astimezone(timezone(timedelta(hours=-5)))
    bounds = {"expires_at__gte": in_new_york.isoformat(), "expires_at__lte": "2999-01-01T00:00:00+14:00"}
    response = client.get("/api/v1/licenses", bounds)
    assert [row["id"] for row in response.json()["results"]] == [str(license_.pk)]
