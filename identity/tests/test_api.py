"""/api/v1/me, /organization and /members."""

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from rest_framework.test import APIClient

from celaest.errors import LimitExceeded
from identity import services
from identity.models import User
from tests.factories import OrganizationFactory, UserFactory

pytestmark = pytest.mark.django_db


def _client(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def owner():
    return UserFactory(organization=OrganizationFactory(max_users=5), role=User.Role.OWNER)


def test_me_shows_the_caller_and_their_organization(owner):
    body = _client(owner).get("/api/v1/me").json()
    assert body["email"] == owner.email
    assert body["organization"]["slug"] == owner.organization.slug
    assert "password" not in body


def test_me_update_changes_only_profile_fields(owner):
    response = _client(owner).patch("/api/v1/me", {"first_name": "Grace", "role": "viewer"}, format="json")
    assert response.status_code == 200
    owner.refresh_from_db()
    assert owner.first_name == "Grace" and owner.role == User.Role.OWNER


def test_owner_updates_organization_settings_and_members_cannot(owner):
    response = _client(owner).patch(
        "/api/v1/organization", {"settings": {"hourly_rate": "80.00"}, "max_users": 999}, format="json"
    )
    assert response.status_code == 200
    owner.organization.refresh_from_db()
    assert owner.organization.settings["hourly_rate"] == "80.00"
    assert owner.organization.max_users == 5
    member = UserFactory(organization=owner.organization, role=User.Role.MEMBER)
    assert _client(member).patch("/api/v1/organization", {"name": "x"}, format="json").status_code == 403


def test_unknown_organization_setting_is_a_400(owner):
    response = _client(owner).patch("/api/v1/organization", {"settings": {"bogus": 1}}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"


def test_admin_adds_member_and_cannot_grant_owner(owner):
    admin = UserFactory(organization=owner.organization, role=User.Role.ADMIN)
    response = _client(admin).post("/api/v1/members", {"email": "New@Example.com", "role": "member"}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["email"] == "new@example.com"
    created = User.objects.get(email="new@example.com")
    assert created.organization == owner.organization and not created.has_usable_password()
    response = _client(admin).post("/api/v1/members", {"email": "boss@example.com", "role": "owner"}, format="json")
    assert response.status_code == 403 and response.json()["error"]["code"] == "owner_only"


def test_duplicate_member_email_is_a_409(owner):
    response = _client(owner).post("/api/v1/members", {"email": owner.email}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "email_taken"


def test_seat_limit_is_enforced(owner):
    for n in range(4):
        assert _client(owner).post("/api/v1/members", {"email": f"m{n}@example.com"}, format="json").status_code == 201
    response = _client(owner).post("/api/v1/members", {"email": "sixth@example.com"}, format="json")
    assert response.status_code == 429
    assert response.json()["error"] == {
        "code": "max_users_reached",
        "message": "The organization has used all 5 seats of its plan.",
        "details": {"max_users": 5},
    }


def test_role_change_and_deactivation(owner):
    member = UserFactory(organization=owner.organization, role=User.Role.MEMBER)
    client = _client(owner)
    assert client.patch(f"/api/v1/members/{member.pk}", {"role": "viewer"}, format="json").status_code == 200
    assert client.delete(f"/api/v1/members/{member.pk}").status_code == 204
    member.refresh_from_db()
    assert member.role == User.Role.VIEWER and not member.is_active


def test_last_owner_cannot_be_demoted_or_deactivated(owner):
    client = _client(owner)
    response = client.patch(f"/api/v1/members/{owner.pk}", {"role": "admin"}, format="json")
    assert response.status_code == 409 and response.json()["error"]["code"] == "last_owner"
    response = client.patch(f"/api/v1/members/{owner.pk}", {"is_active": False}, format="json")
    assert response.status_code == 409


@pytest.mark.django_db(transaction=True)
def test_concurrent_member_creation_never_exceeds_max_users():
    organization = OrganizationFactory(max_users=5)
    owner = UserFactory(organization=organization, role=User.Role.OWNER)

    def add(n):
        try:
            services.member_create(organization=organization, actor=owner, email=f"racer{n}@example.com")
            return "created"
        except LimitExceeded:
            return "refused"
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=20) as pool:
        outcomes = list(pool.map(add, range(20)))
    assert outcomes.count("created") == 4
    assert outcomes.count("refused") == 16
    assert User.objects.filter(organization=organization, is_active=True).count() == 5


def test_malformed_json_is_a_400_in_the_error_shape(owner):
    response = _client(owner).generic("POST", "/api/v1/members", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_request"


@pytest.mark.parametrize(
    "settings",
    [
        0,
        {"timezone": "Mars/Olympus"},
        {"hourly_rate": "-5"},
        {"hourly_rate": "lots"},
        {"currency": "euro"},
        {"minutes_saved_overrides": {"summary": "ten"}},
        {"minutes_saved_overrides": []},
    ],
)
def test_invalid_organization_settings_are_a_400(owner, settings):
    response = _client(owner).patch("/api/v1/organization", {"settings": settings}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"


def test_valid_organization_settings_are_kept(owner):
    body = {"settings": {"timezone": "Europe/Madrid", "hourly_rate": 45, "currency": "EUR", "country": "ES",
                         "minutes_saved_overrides": {"summary": 12.5}}}  # fmt: skip
    assert _client(owner).patch("/api/v1/organization", body, format="json").status_code == 200
    owner.organization.refresh_from_db()
    assert owner.organization.settings["timezone"] == "Europe/Madrid"


def test_profile_and_organization_changes_are_audited(owner):
    from audit.models import AuditLog

    client = _client(owner)
    client.patch("/api/v1/me", {"first_name": "Grace"}, format="json")
    client.patch("/api/v1/organization", {"settings": {"hourly_rate": "75"}}, format="json")
    profile = AuditLog.objects.get(resource_type="identity.user", resource_id=str(owner.pk), action="update")
    assert profile.changes["first_name"][1] == "Grace" and profile.user == owner
    org = AuditLog.objects.get(resource_type="identity.organization", action="update")
    assert org.changes["settings"][1]["hourly_rate"] == "75" and org.organization == owner.organization
