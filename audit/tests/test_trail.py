"""The audit trail: every create, update and delete through the API and the admin, logins, logouts
and failed logins land in audit_logs, with secrets redacted (a change made with an API key names
the key; a refused request adds nothing); rows are immutable."""

import pytest
from django.db import DatabaseError, transaction
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from audit.models import AuditLog
from identity.models import User
from settings_app.models import SystemConfig, Webhook
from settings_app.services.api_keys import api_key_create
from tests import factories as f

pytestmark = pytest.mark.django_db

AGENT = "pytest-agent/1.0"


def _api(user) -> APIClient:
    client = APIClient(HTTP_USER_AGENT=AGENT)
    client.force_authenticate(user)
    return client


def _rows(**filters) -> list[AuditLog]:
    return list(AuditLog.objects.filter(**filters).order_by("created_at"))


# --- API writes --------------------------------------------------------------------------------


def test_api_create_update_delete_are_audited_with_diffs_and_secrets_redacted(owner):
    client = _api(owner)
    created = client.post(
        "/api/v1/webhooks", {"name": "Hook", "url": "https://hooks.example.com/a", "events": ["*"]}, format="json"
    )
    assert created.status_code == 201
    webhook_id = created.json()["id"]
    secret = created.json()["secret"]
    assert client.patch(f"/api/v1/webhooks/{webhook_id}", {"name": "Renamed"}, format="json").status_code == 200
    assert client.delete(f"/api/v1/webhooks/{webhook_id}").status_code == 204

    create, update, delete = _rows(resource_id=webhook_id)
    assert [create.action, update.action, delete.action] == ["create", "update", "delete"]
    for row in (create, update, delete):
        assert row.user == owner and row.organization == owner.organization
        assert row.source == "api" and row.ip_address == "127.0.0.1" and row.user_agent == AGENT
        assert row.resource_type == "settings_app.webhook"
    assert create.changes["name"] == [None, "Hook"] and create.changes["url"] == [None, "https://hooks.example.com/a"]
    assert create.changes["secret_encrypted"] == "[redacted]"
    assert update.changes == {"name": ["Hook", "Renamed"]}
    assert delete.changes["name"] == ["Renamed", None]
    trail = str([row.changes for row in (create, update, delete)])
    assert secret not in trail and Webhook.objects.count() == 0


def test_sensitive_config_values_never_reach_the_trail():
    staff = f.StaffUserFactory()
    client = _api(staff)
    body = {"key": "openai.org", "value": "org-secret-1", "is_sensitive": True}
    assert client.post("/api/v1/system-config", body, format="json").status_code == 201
    assert client.patch("/api/v1/system-config/openai.org", {"value": "org-secret-2"}, format="json").status_code == 200
    create, update = _rows(resource_id="openai.org")
    assert create.changes["value"] == [None, "[redacted]"] and update.changes["value"] == ["[redacted]", "[redacted]"]
    assert "org-secret" not in str(create.changes) + str(update.changes)
    assert SystemConfig.objects.get(key="openai.org").value == "org-secret-2"


def test_a_write_a_service_audits_is_recorded_once():
    staff = f.StaffUserFactory()
    organization = f.OrganizationFactory()
    plan = f.SubscriptionPlanFactory()
    response = _api(staff).post(
        "/api/v1/licenses", {"organization": organization.slug, "plan": plan.code}, format="json"
    )
    assert response.status_code == 201, response.content
    rows = _rows(resource_id=response.json()["id"])
    assert len(rows) == 1 and rows[0].action == "create"
    assert rows[0].ip_address == "127.0.0.1" and rows[0].user_agent == AGENT  # filled from the request


def test_custom_actions_and_revokes_are_audited(owner):
    issued = api_key_create(user=owner, name="CI")
    assert _api(owner).delete(f"/api/v1/api-keys/{issued.api_key.pk}").status_code == 204
    [row] = _rows(resource_id=str(issued.api_key.pk))
    assert row.action == "delete" and row.changes["revoked_at"][0] is None and row.changes["revoked_at"][1]
    assert "key_hash" not in row.changes or row.changes["key_hash"] == "[redacted]"


def test_reads_are_not_audited(owner):
    f.WebhookFactory(organization=owner.organization, user=owner)
    assert _api(owner).get("/api/v1/webhooks").status_code == 200
    assert not AuditLog.objects.exists()


def test_a_change_made_with_an_api_key_names_the_key_on_its_row(owner):
    issued = api_key_create(user=owner, name="deploy", scopes=["*"])
    client = APIClient(HTTP_AUTHORIZATION=f"Bearer {issued.raw_key}")
    client.get("/api/v1/webhooks")
    body = {"name": "Hook", "url": "https://hooks.example.com/k", "events": ["*"]}
    assert client.post("/api/v1/webhooks", body, format="json").status_code == 201
    [row] = _rows()  # one row: the change, not a second one for the key's use
    assert row.action == "create" and row.resource_type == "settings_app.webhook" and row.user == owner
    assert row.changes["via_key"] == str(issued.api_key.pk)
    assert client.patch("/api/v1/me", {"first_name": "Zelda-via-key"}, format="json").status_code == 200
    assert _rows(resource_type="identity.user")[0].changes["via_key"] == str(issued.api_key.pk)


def test_a_refused_write_made_with_an_api_key_adds_no_audit_row(owner):
    # Authentication audited every key write before the view ran: a 404 or 405 added a row.
    issued = api_key_create(user=owner, name="deploy", scopes=["*"])
    client = APIClient(HTTP_AUTHORIZATION=f"Bearer {issued.raw_key}")
    row = f.AuditLogFactory(organization=owner.organization)
    missing = "00000000-0000-4000-8000-000000000000"
    assert client.patch(f"/api/v1/webhooks/{missing}", {"name": "x"}, format="json").status_code == 404
    assert client.delete(f"/api/v1/webhooks/{missing}").status_code == 404
    assert client.delete(f"/api/v1/audit-logs/{row.pk}").status_code == 405
    assert client.post("/api/v1/webhooks", {}, format="json").status_code == 400
    assert client.post("/api/v1/nowhere", {}, format="json").status_code == 404
    read_only = APIClient(
        HTTP_AUTHORIZATION=f"Bearer {api_key_create(user=owner, name='ro', scopes=['webhooks:read']).raw_key}"
    )
    assert read_only.post("/api/v1/webhooks", {}, format="json").status_code == 403
    assert _rows() == [row]


# --- the trail itself ------------------------------------------------------------------------


def test_the_api_cannot_change_or_delete_audit_rows(owner):
    row = f.AuditLogFactory(organization=owner.organization)
    client = _api(owner)
    assert client.patch(f"/api/v1/audit-logs/{row.pk}", {"action": "x"}, format="json").status_code == 405
    assert client.delete(f"/api/v1/audit-logs/{row.pk}").status_code == 405
    assert client.post("/api/v1/audit-logs", {}, format="json").status_code == 405


def test_the_database_refuses_updates_and_deletes_of_audit_rows():
    row = f.AuditLogFactory(resource_id="42")
    with pytest.raises(DatabaseError, match="append-only"):
        with transaction.atomic():
            AuditLog.objects.filter(pk=row.pk).update(resource_id="43")
    with pytest.raises(DatabaseError, match="append-only"):
        with transaction.atomic():
            AuditLog.objects.filter(pk=row.pk).delete()
    row.refresh_from_db()
    assert row.resource_id == "42"


def test_deleting_a_user_keeps_their_audit_rows():
    user = f.UserFactory()
    row = f.AuditLogFactory(user=user, organization=user.organization, resource_id="7")
    User.all_objects.filter(pk=user.pk).delete()  # the one change the trigger lets through: SET NULL
    row.refresh_from_db()
    assert row.user_id is None and row.resource_id == "7"


# --- admin ---------------------------------------------------------------------------------------


@pytest.fixture
def staff_client():
    client = Client(HTTP_USER_AGENT=AGENT)
    client.force_login(f.StaffUserFactory())
    return client


def test_admin_add_change_delete_are_audited(staff_client):
    flag_url = reverse("admin:settings_app_featureflag_add")
    form = {"flag_key": "beta", "description": "", "target_type": "all", "target_percentage": 0, "target_ids": "[]"}
    assert staff_client.post(flag_url, form).status_code == 302
    flag = f.FeatureFlag.objects.get(flag_key="beta")
    change_url = reverse("admin:settings_app_featureflag_change", args=[flag.pk])
    assert staff_client.post(change_url, {**form, "is_enabled": "on"}).status_code == 302
    delete_url = reverse("admin:settings_app_featureflag_delete", args=[flag.pk])
    assert staff_client.post(delete_url, {"post": "yes"}).status_code == 302

    create, update, delete = _rows(resource_id=str(flag.pk))
    assert [create.action, update.action, delete.action] == ["create", "update", "delete"]
    assert update.changes == {"is_enabled": [False, True]}
    assert all(row.source == "admin" and row.user_agent == AGENT for row in (create, update, delete))


def test_admin_secret_changes_are_redacted(staff_client):
    webhook = f.WebhookFactory(url="https://hooks.example.com/x")
    url = reverse("admin:settings_app_webhook_change", args=[webhook.pk])
    new_secret = "whsec_" + "A" * 40
    form = {
        "organization": webhook.organization_id,
        "user": webhook.user_id,
        "name": webhook.name,
        "url": webhook.url,
        "events": '["order.paid"]',
        "secret": new_secret,
        "status": "active",
        "disabled_reason": "",
    }
    response = staff_client.post(url, form)
    assert response.status_code == 302, response.content[:2000]
    [row] = _rows(resource_id=str(webhook.pk))
    assert row.changes["secret_encrypted"] == "[redacted]" and "secret_hash" in row.changes
    assert new_secret not in str(row.changes)


def test_admin_actions_are_audited(staff_client):
    session = f.UserSessionFactory()
    url = reverse("admin:settings_app_usersession_changelist")
    staff_client.post(url, {"action": "revoke_sessions", "_selected_action": [session.pk]})
    [row] = _rows(action="action")
    assert row.changes["admin_action"] == "revoke_sessions" and row.changes["selected"] == [str(session.pk)]


# --- logins --------------------------------------------------------------------------------------


def test_logins_logouts_and_failed_logins_are_audited():
    user = f.UserFactory(email="ada@example.com", is_staff=True)
    client = Client(HTTP_USER_AGENT=AGENT)
    login_url = reverse("admin:login")
    client.post(login_url, {"username": "ada@example.com", "password": "wrong-password"})
    assert client.post(login_url, {"username": "ada@example.com", "password": f.DEFAULT_PASSWORD}).status_code == 302
    client.post(reverse("admin:logout"))

    failed, login, logout = _rows(action__in=["login_failed", "login", "logout"])
    assert failed.action == "login_failed" and failed.changes == {"username": "ada@example.com"}
    assert "wrong-password" not in str(failed.changes)
    assert login.action == "login" and login.user == user and login.ip_address == "127.0.0.1"
    assert login.user_agent == AGENT and login.resource_type == "settings_app.usersession"
    assert logout.action == "logout" and logout.resource_id == login.resource_id
