"""/api/v1/me, /organization, /members and invitations."""

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connection
from rest_framework.test import APIClient

from audit.models import AuditLog
from celaest.errors import LimitExceeded
from identity import services
from identity.models import User
from tests.clients import client_as
from tests.factories import OrganizationFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner():
    return UserFactory(organization=OrganizationFactory(max_users=5), role=User.Role.OWNER)


def test_me_shows_the_caller_and_their_organization(owner):
    body = client_as(owner).get("/api/v1/me").json()
    assert body["email"] == owner.email
    assert body["organization"]["slug"] == owner.organization.slug
    assert "password" not in body


def test_me_update_changes_only_profile_fields(owner):
    response = client_as(owner).patch("/api/v1/me", {"first_name": "Grace", "role": "viewer"}, format="json")
    assert response.status_code == 200
    owner.refresh_from_db()
    assert owner.first_name == "Grace" and owner.role == User.Role.OWNER


def test_owner_updates_organization_settings_and_members_cannot(owner):
    response = client_as(owner).patch(
        "/api/v1/organization", {"settings": {"hourly_rate": "80.00"}, "max_users": 999}, format="json"
    )
    assert response.status_code == 200
    owner.organization.refresh_from_db()
    assert owner.organization.settings["hourly_rate"] == "80.00"
    assert owner.organization.max_users == 5
    member = UserFactory(organization=owner.organization, role=User.Role.MEMBER)
    assert client_as(member).patch("/api/v1/organization", {"name": "x"}, format="json").status_code == 403


def test_unknown_organization_setting_is_a_400(owner):
    response = client_as(owner).patch("/api/v1/organization", {"settings": {"bogus": 1}}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"


def _invite(client, email, **fields):
    return client.post("/api/v1/members", {"email": email, **fields}, format="json")


def _token(mail):
    return mail.body.strip().splitlines()[-1]


def test_admin_invites_a_member_and_cannot_grant_owner(owner, mailoutbox, django_capture_on_commit_callbacks):
    admin = UserFactory(organization=owner.organization, role=User.Role.ADMIN)
    with django_capture_on_commit_callbacks(execute=True):
        response = _invite(client_as(admin), "New@Example.com", role="member")
    assert response.status_code == 202, response.content
    assert response.json()["email"] == "new@example.com" and response.json()["status"] == "invited"
    assert not User.all_objects.filter(email="new@example.com").exists()  # made on acceptance
    [mail] = mailoutbox
    assert mail.to == ["new@example.com"] and owner.organization.name in mail.subject
    assert AuditLog.objects.filter(action="member.invited", user=admin).count() == 1
    response = _invite(client_as(admin), "boss@example.com", role="owner")
    assert response.status_code == 403 and response.json()["error"]["code"] == "owner_only"


def test_inviting_a_user_of_another_organization_answers_as_for_a_new_address(
    owner, mailoutbox, django_capture_on_commit_callbacks
):
    # It answered 409 email_taken for them and 201 for an unknown address: one tenant learnt who
    # has an account in another.
    elsewhere = UserFactory(organization=OrganizationFactory(), email="taken@example.com", role=User.Role.OWNER)
    before = User.objects.filter(pk=elsewhere.pk).values().get()
    with django_capture_on_commit_callbacks(execute=True):
        taken = _invite(client_as(owner), "taken@example.com")
        fresh = _invite(client_as(owner), "fresh@example.com")
    assert taken.status_code == fresh.status_code == 202
    normalized = [{k: v for k, v in r.json().items() if k not in ("email", "expires_at")} for r in (taken, fresh)]
    assert normalized[0] == normalized[1] and taken.json().keys() == fresh.json().keys()
    assert [m.to for m in mailoutbox] == [["taken@example.com"], ["fresh@example.com"]]
    assert User.objects.filter(pk=elsewhere.pk).values().get() == before  # not moved, not linked
    listed = {row["email"] for row in client_as(owner).get("/api/v1/members").json()["results"]}
    assert listed == {owner.email}


def test_inviting_a_member_of_this_organization_is_a_409(owner):
    response = _invite(client_as(owner), owner.email.upper())
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "already_member"


def test_accepting_an_invitation_makes_the_member(owner, mailoutbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        _invite(client_as(owner), "ada@example.com", role="viewer", first_name="Ada")
    token = _token(mailoutbox[0])
    response = APIClient().post("/api/v1/invitations/accept", {"token": token, "password": "c0rrect-h0rse-b4ttery"})
    assert response.status_code == 201, response.content
    member = User.objects.get(email="ada@example.com")
    assert member.organization == owner.organization and member.role == User.Role.VIEWER
    assert member.first_name == "Ada" and member.check_password("c0rrect-h0rse-b4ttery")
    assert AuditLog.objects.filter(action="create", resource_id=str(member.pk)).exists()
    again = APIClient().post("/api/v1/invitations/accept", {"token": token})
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_member"


def test_an_invitation_accepted_by_an_address_with_an_account_elsewhere_links_nothing(
    owner, mailoutbox, django_capture_on_commit_callbacks
):
    elsewhere = UserFactory(organization=OrganizationFactory(), email="taken@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        _invite(client_as(owner), "taken@example.com")
    response = APIClient().post("/api/v1/invitations/accept", {"token": _token(mailoutbox[0])})
    assert response.status_code == 409 and response.json()["error"]["code"] == "email_in_use"
    elsewhere.refresh_from_db()
    assert elsewhere.organization != owner.organization


@pytest.mark.parametrize("tamper", ["garbage", "flip"])
def test_a_forged_or_expired_invitation_is_refused(
    owner, mailoutbox, django_capture_on_commit_callbacks, monkeypatch, tamper
):
    with django_capture_on_commit_callbacks(execute=True):
        _invite(client_as(owner), "eve@example.com", role="member")
    token = _token(mailoutbox[0])
    forged = "garbage" if tamper == "garbage" else token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    response = APIClient().post("/api/v1/invitations/accept", {"token": forged})
    assert response.status_code == 400 and response.json()["error"]["code"] == "invitation_invalid"
    monkeypatch.setattr(services, "INVITATION_MAX_AGE", timedelta(seconds=-1))  # a week has passed
    response = APIClient().post("/api/v1/invitations/accept", {"token": token})
    assert response.status_code == 400 and response.json()["error"]["code"] == "invitation_expired"
    assert not User.objects.filter(email="eve@example.com").exists()


def test_seat_limit_is_enforced_on_invitation_and_on_acceptance(owner, mailoutbox, django_capture_on_commit_callbacks):
    UserFactory.create_batch(3, organization=owner.organization)
    with django_capture_on_commit_callbacks(execute=True):
        assert _invite(client_as(owner), "fifth@example.com").status_code == 202
    UserFactory(organization=owner.organization)  # the last seat goes meanwhile
    response = _invite(client_as(owner), "sixth@example.com")
    assert response.status_code == 429
    assert response.json()["error"] == {
        "code": "max_users_reached",
        "message": "The organization has used all 5 seats of its plan.",
        "details": {"max_users": 5},
    }
    response = APIClient().post("/api/v1/invitations/accept", {"token": _token(mailoutbox[0])})
    assert response.status_code == 429


def test_role_change_and_deactivation(owner):
    member = UserFactory(organization=owner.organization, role=User.Role.MEMBER)
    client = client_as(owner)
    assert client.patch(f"/api/v1/members/{member.pk}", {"role": "viewer"}, format="json").status_code == 200
    assert client.delete(f"/api/v1/members/{member.pk}").status_code == 204
    member.refresh_from_db()
    assert member.role == User.Role.VIEWER and not member.is_active


def test_last_owner_cannot_be_demoted_or_deactivated(owner):
    client = client_as(owner)
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
    response = client_as(owner).generic("POST", "/api/v1/members", "{not json", content_type="application/json")
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
    response = client_as(owner).patch("/api/v1/organization", {"settings": settings}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"


def test_valid_organization_settings_are_kept(owner):
    body = {"settings": {"timezone": "Europe/Madrid", "hourly_rate": 45, "currency": "EUR", "country": "ES",
                         "minutes_saved_overrides": {"summary": 12.5}}}  # fmt: skip
    assert client_as(owner).patch("/api/v1/organization", body, format="json").status_code == 200
    owner.organization.refresh_from_db()
    assert owner.organization.settings["timezone"] == "Europe/Madrid"


def test_profile_and_organization_changes_are_audited(owner):
    from audit.models import AuditLog

    client = client_as(owner)
    client.patch("/api/v1/me", {"first_name": "Grace"}, format="json")
    client.patch("/api/v1/organization", {"settings": {"hourly_rate": "75"}}, format="json")
    profile = AuditLog.objects.get(resource_type="identity.user", resource_id=str(owner.pk), action="update")
    assert profile.changes["first_name"][1] == "Grace" and profile.user == owner
    org = AuditLog.objects.get(resource_type="identity.organization", action="update")
    assert org.changes["settings"][1]["hourly_rate"] == "75" and org.organization == owner.organization
