"""An API key's AI gateway limits through the API-key endpoints: set on creation, changed with
PATCH/PUT, every bad value a 400 naming the field, another user's key a 404."""

from decimal import Decimal

import pytest

from settings_app.models import UserApiKey
from tests import factories as f
from tests.clients import client_as

pytestmark = pytest.mark.django_db

LIMITS = {
    "allowed_models": ["gpt-4o-mini", "claude-3-5-haiku"],
    "spend_limit_daily_usd": "2.5000",
    "spend_limit_monthly_usd": "40.0000",
    "tokens_per_minute": 20000,
    "max_requests_in_flight": 4,
}


def test_a_key_is_created_with_its_limits_and_shows_them(owner):
    response = client_as(owner).post("/api/v1/api-keys", {"name": "agent", **LIMITS}, format="json")
    assert response.status_code == 201, response.content
    assert {name: response.json()[name] for name in LIMITS} == LIMITS
    stored = UserApiKey.objects.get()
    assert stored.spend_limit_daily_usd == Decimal("2.5")
    assert stored.allowed_models == ["gpt-4o-mini", "claude-3-5-haiku"]
    listed = client_as(owner).get("/api/v1/api-keys").json()["results"][0]
    assert listed["tokens_per_minute"] == 20000


def test_limits_are_changed_and_lifted_with_patch(owner):
    api_key = f.UserApiKeyFactory(user=owner)
    url = f"/api/v1/api-keys/{api_key.pk}"
    changed = client_as(owner).patch(url, LIMITS, format="json")
    assert changed.status_code == 200, changed.content
    assert changed.json()["max_requests_in_flight"] == 4
    lifted = client_as(owner).patch(url, {"spend_limit_daily_usd": None, "allowed_models": []}, format="json")
    assert lifted.status_code == 200
    api_key.refresh_from_db()
    assert api_key.spend_limit_daily_usd is None
    assert api_key.allowed_models == []
    assert api_key.spend_limit_monthly_usd == Decimal("40")  # untouched
    renamed = client_as(owner).put(url, {"name": "  renamed  "}, format="json")
    assert renamed.status_code == 200 and renamed.json()["name"] == "renamed"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("allowed_models", "gpt-4o-mini"),
        ("allowed_models", [""]),
        ("allowed_models", [" gpt-4o-mini"]),
        ("allowed_models", ["gpt-4o-mini", "gpt-4o-mini"]),
        ("allowed_models", [7]),
        ("allowed_models", ["m" * 101]),
        ("allowed_models", [f"model-{n}" for n in range(101)]),
        ("spend_limit_daily_usd", "-0.01"),
        ("spend_limit_daily_usd", "NaN"),
        ("spend_limit_daily_usd", "Infinity"),
        ("spend_limit_daily_usd", "0.00001"),
        ("spend_limit_monthly_usd", "1e20"),
        ("spend_limit_monthly_usd", "ten"),
        ("tokens_per_minute", 0),
        ("tokens_per_minute", 1.5),
        ("tokens_per_minute", 10**12),
        ("max_requests_in_flight", 0),
        ("max_requests_in_flight", -1),
        ("max_requests_in_flight", "many"),
        ("name", ""),
    ],
)
def test_every_bad_limit_is_a_400_naming_it(owner, field, value):
    api_key = f.UserApiKeyFactory(user=owner, tokens_per_minute=500)
    response = client_as(owner).patch(f"/api/v1/api-keys/{api_key.pk}", {field: value}, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "invalid"
    assert field in response.json()["error"]["details"]
    api_key.refresh_from_db()
    assert api_key.tokens_per_minute == 500
    created = client_as(owner).post("/api/v1/api-keys", {"name": "x", field: value}, format="json")
    assert created.status_code == 400
    assert UserApiKey.objects.count() == 1


def test_another_users_key_cannot_be_changed(owner):
    colleague = f.UserFactory(organization=owner.organization)
    theirs = f.UserApiKeyFactory(user=colleague)
    response = client_as(owner).patch(f"/api/v1/api-keys/{theirs.pk}", {"tokens_per_minute": 1}, format="json")
    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.tokens_per_minute is None


def test_the_admin_shows_and_checks_the_limits(owner, staff, client):
    api_key = f.UserApiKeyFactory(user=owner, spend_limit_daily_usd=Decimal("3"))
    client.force_login(staff)
    page = client.get(f"/admin/settings_app/userapikey/{api_key.pk}/change/")
    assert page.status_code == 200
    for field in ("allowed_models", "spend_limit_daily_usd", "tokens_per_minute", "max_requests_in_flight"):
        assert f'name="{field}"'.encode() in page.content
