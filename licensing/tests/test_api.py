"""/api/v1/plans, /licenses and /license-usage: what each caller sees and can change."""

from datetime import date, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from identity.models import User
from licensing.models import License, SubscriptionPlan
from licensing.selectors import license_effective_limits
from settings_app.services.api_keys import api_key_create
from tests.clients import client_as
from tests.factories import (
    LicenseFactory,
    LicenseUsageLogFactory,
    SubscriptionPlanFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def member():
    return UserFactory(role=User.Role.MEMBER)


# --- plans -------------------------------------------------------------------------------------


def test_customers_see_only_active_plans_and_staff_see_all(member, staff):
    on_sale = SubscriptionPlanFactory(code="pro")
    SubscriptionPlanFactory(code="legacy", is_active=False)

    codes = [plan["code"] for plan in client_as(member).get("/api/v1/plans").json()["results"]]
    assert codes == [on_sale.code]
    legacy = SubscriptionPlan.objects.get(code="legacy")
    assert client_as(member).get(f"/api/v1/plans/{legacy.pk}").status_code == 404

    staff_codes = {plan["code"] for plan in client_as(staff).get("/api/v1/plans").json()["results"]}
    assert staff_codes == {"pro", "legacy"}


def test_customers_cannot_write_plans(member):
    plan = SubscriptionPlanFactory()
    client = client_as(member)
    assert client.post("/api/v1/plans", {"code": "x", "name": "X"}, format="json").status_code == 403
    assert client.patch(f"/api/v1/plans/{plan.pk}", {"name": "Hacked"}, format="json").status_code == 403
    plan.refresh_from_db()
    assert plan.name != "Hacked"


def test_staff_create_update_and_delete_a_plan(staff):
    client = client_as(staff)
    payload = {
        "code": "team",
        "name": "Team",
        "price_monthly": "99.00",
        "price_yearly": "990.00",
        "currency": "eur",
        "limits": {"max_users": 25, "tokens_per_month": None},
        "features": ["ai_mesh"],
    }
    response = client.post("/api/v1/plans", payload, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["currency"] == "EUR" and body["limits"] == {"max_users": 25, "tokens_per_month": None}

    response = client.patch(f"/api/v1/plans/{body['id']}", {"is_active": False}, format="json")
    assert response.status_code == 200
    assert SubscriptionPlan.objects.get(pk=body["id"]).is_active is False

    assert client.delete(f"/api/v1/plans/{body['id']}").status_code == 204
    assert not SubscriptionPlan.objects.filter(pk=body["id"]).exists()


def test_duplicate_plan_code_is_a_400_in_the_error_shape(staff):
    SubscriptionPlanFactory(code="pro")
    response = client_as(staff).post(
        "/api/v1/plans", {"code": "pro", "name": "Pro again", "price_monthly": "1", "price_yearly": "10"}, format="json"
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid" and "code" in error["details"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("limits", {"max_userz": 5}),
        ("limits", {"max_users": -1}),
        ("limits", {"max_users": "ten"}),
        ("limits", ["max_users"]),
        ("features", "ai_mesh"),
        ("price_monthly", "-1.00"),
        ("currency", "EURO"),
    ],
)
def test_bad_plan_input_is_a_400_never_a_500(staff, field, value):
    plan = SubscriptionPlanFactory()
    response = client_as(staff).patch(f"/api/v1/plans/{plan.pk}", {field: value}, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["details"]


def test_deleting_a_plan_with_licenses_is_a_409(staff):
    plan = LicenseFactory().plan
    response = client_as(staff).delete(f"/api/v1/plans/{plan.pk}")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "in_use"
    assert SubscriptionPlan.objects.filter(pk=plan.pk).exists()


# --- licenses ----------------------------------------------------------------------------------


def test_license_shows_key_plan_and_effective_limits_overlay(member):
    plan = SubscriptionPlanFactory(limits={"max_users": 10, "max_machines": 3, "tokens_per_month": 1000})
    license = LicenseFactory(
        organization=member.organization, plan=plan, custom_limits={"max_machines": 8, "tokens_per_month": None}
    )

    body = client_as(member).get(f"/api/v1/licenses/{license.pk}").json()

    assert body["license_key"] == license.license_key
    assert body["plan"] == {"id": str(plan.pk), "code": plan.code, "name": plan.name}
    assert body["effective_limits"] == {"max_users": 10, "max_machines": 8, "tokens_per_month": None}
    assert body["effective_limits"] == license_effective_limits(license=license)
    assert "notes" not in body


def test_effective_limits_without_custom_limits_are_the_plan_limits():
    license = LicenseFactory(custom_limits={})
    assert license_effective_limits(license=license) == license.plan.limits


def test_licenses_are_read_only_for_their_organization(member):
    license = LicenseFactory(organization=member.organization)
    owner = UserFactory(organization=member.organization, role=User.Role.OWNER)
    client = client_as(owner)
    assert client.patch(f"/api/v1/licenses/{license.pk}", {"status": "active"}, format="json").status_code == 405
    # Issuing is for staff (licensing/tests/test_lifecycle.py).
    assert client.post("/api/v1/licenses", {"plan": str(license.plan_id)}, format="json").status_code == 403
    assert client.delete(f"/api/v1/licenses/{license.pk}").status_code == 405


def test_license_filters_and_search(member):
    org = member.organization
    gold = SubscriptionPlanFactory(code="gold")
    now = timezone.now()
    soon = LicenseFactory(organization=org, plan=gold, expires_at=now + timedelta(days=5))
    later = LicenseFactory(organization=org, status=License.Status.TRIAL, expires_at=now + timedelta(days=90))
    LicenseFactory(status=License.Status.TRIAL)  # another organization
    client = client_as(member)

    def ids(query):
        response = client.get("/api/v1/licenses", query)
        assert response.status_code == 200, response.json()
        return {row["id"] for row in response.json()["results"]}

    assert ids({"status": "trial"}) == {str(later.pk)}
    assert ids({"plan": str(gold.pk)}) == {str(soon.pk)}
    assert ids({"plan_code": "gold"}) == {str(soon.pk)}
    assert ids({"expires_at__lte": (now + timedelta(days=30)).isoformat()}) == {str(soon.pk)}
    assert ids({"expires_at__gte": (now + timedelta(days=30)).isoformat()}) == {str(later.pk)}
    assert ids({"search": later.license_key[-10:]}) == {str(later.pk)}
    assert client.get("/api/v1/licenses", {"plan": "not-a-uuid"}).status_code == 400


def test_soft_deleted_licenses_are_absent(member):
    license = LicenseFactory(organization=member.organization)
    license.soft_delete()
    client = client_as(member)
    assert client.get("/api/v1/licenses").json()["results"] == []
    assert client.get(f"/api/v1/licenses/{license.pk}").status_code == 404


def test_license_list_runs_a_constant_number_of_queries(member):
    client = client_as(member)

    def count_queries():
        with CaptureQueriesContext(connection) as queries:
            response = client.get("/api/v1/licenses", {"page_size": 100})
        assert response.status_code == 200
        return len(response.json()["results"]), len(queries)

    for _ in range(5):
        LicenseFactory(organization=member.organization)
    rows_few, queries_few = count_queries()
    for _ in range(45):
        LicenseFactory(organization=member.organization)
    rows_many, queries_many = count_queries()

    assert (rows_few, rows_many) == (5, 50)
    assert queries_many == queries_few


def test_api_key_with_licenses_read_scope_reads_licenses_only(member):
    LicenseFactory(organization=member.organization)
    raw_key = api_key_create(user=member, name="ci", scopes=["licenses:read"]).raw_key
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    assert len(client.get("/api/v1/licenses").json()["results"]) == 1
    assert client.get("/api/v1/license-usage").status_code == 403


# --- license usage -----------------------------------------------------------------------------


def test_license_usage_filters_by_license_and_period(member):
    org = member.organization
    first, second = LicenseFactory(organization=org), LicenseFactory(organization=org)
    january = LicenseUsageLogFactory(license=first, period_start=date(2026, 1, 1), period_end=date(2026, 1, 31))
    february = LicenseUsageLogFactory(license=first, period_start=date(2026, 2, 1), period_end=date(2026, 2, 28))
    other = LicenseUsageLogFactory(license=second, period_start=date(2026, 2, 1), period_end=date(2026, 2, 28))
    LicenseUsageLogFactory(period_start=date(2026, 2, 1), period_end=date(2026, 2, 28))  # another organization
    client = client_as(member)

    def ids(query):
        response = client.get("/api/v1/license-usage", query)
        assert response.status_code == 200, response.json()
        return {row["id"] for row in response.json()["results"]}

    assert ids({}) == {str(january.pk), str(february.pk), str(other.pk)}
    assert ids({"license": str(first.pk)}) == {str(january.pk), str(february.pk)}
    assert ids({"period_start__gte": "2026-02-01"}) == {str(february.pk), str(other.pk)}
    assert ids({"license": str(first.pk), "period_start": "2026-01-01"}) == {str(january.pk)}
    body = client.get(f"/api/v1/license-usage/{january.pk}").json()
    assert body["license"] == str(first.pk) and body["period_end"] == "2026-01-31"
