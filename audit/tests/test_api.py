"""/api/v1/audit-logs and /system-events: who may read the trail, and its filters."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from audit.models import AuditLog, SystemEvent
from identity.models import User
from settings_app.services.api_keys import api_key_create
from tests.clients import client_as
from tests.factories import (
    AuditLogFactory,
    OrganizationFactory,
    SystemEventFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def _ids(client, path, query=None):
    response = client.get(path, query or {})
    assert response.status_code == 200, response.json()
    return {row["id"] for row in response.json()["results"]}


@pytest.fixture
def admin():
    return UserFactory(role=User.Role.ADMIN)


def test_admin_sees_their_own_organization_only(admin):
    mine = AuditLogFactory(organization=admin.organization, user=admin)
    theirs = AuditLogFactory(organization=OrganizationFactory())
    platform = AuditLogFactory(organization=None)
    client = client_as(admin)

    assert _ids(client, "/api/v1/audit-logs") == {str(mine.pk)}
    assert client.get(f"/api/v1/audit-logs/{theirs.pk}").status_code == 404
    assert client.get(f"/api/v1/audit-logs/{platform.pk}").status_code == 404
    # Naming another organization does not widen a customer's view.
    assert _ids(client, "/api/v1/audit-logs", {"organization": str(theirs.organization_id)}) == set()

    body = client.get(f"/api/v1/audit-logs/{mine.pk}").json()
    assert body["user"] == str(admin.pk) and body["user_email"] == admin.email


def test_owner_reads_and_members_and_viewers_get_403(admin):
    AuditLogFactory(organization=admin.organization)
    owner = UserFactory(organization=admin.organization, role=User.Role.OWNER)
    assert client_as(owner).get("/api/v1/audit-logs").status_code == 200
    for role in (User.Role.MEMBER, User.Role.VIEWER):
        user = UserFactory(organization=admin.organization, role=role)
        response = client_as(user).get("/api/v1/audit-logs")
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "permission_denied"


def test_staff_see_every_organization_and_can_narrow_to_one(staff):
    first, second = OrganizationFactory(), OrganizationFactory()
    a = AuditLogFactory(organization=first)
    b = AuditLogFactory(organization=second)
    platform = AuditLogFactory(organization=None, source="command")
    client = client_as(staff)

    assert _ids(client, "/api/v1/audit-logs") == {str(a.pk), str(b.pk), str(platform.pk)}
    assert _ids(client, "/api/v1/audit-logs", {"organization": str(second.pk)}) == {str(b.pk)}
    assert client.get(f"/api/v1/audit-logs/{a.pk}").status_code == 200


def test_audit_log_filters(admin):
    org = admin.organization
    colleague = UserFactory(organization=org)
    now = timezone.now()
    login = AuditLogFactory(
        organization=org, user=colleague, action=AuditLog.Action.LOGIN, resource_type="identity.user"
    )
    update = AuditLogFactory(
        organization=org, user=admin, action=AuditLog.Action.UPDATE, resource_type="licensing.license",
        resource_id="42", created_at=now - timedelta(days=2),
    )  # fmt: skip
    client = client_as(admin)

    assert _ids(client, "/api/v1/audit-logs", {"action": "login"}) == {str(login.pk)}
    assert _ids(client, "/api/v1/audit-logs", {"resource_type": "licensing.license"}) == {str(update.pk)}
    assert _ids(client, "/api/v1/audit-logs", {"resource_id": "42"}) == {str(update.pk)}
    assert _ids(client, "/api/v1/audit-logs", {"user": str(colleague.pk)}) == {str(login.pk)}
    day_ago = (now - timedelta(days=1)).isoformat()
    assert _ids(client, "/api/v1/audit-logs", {"created_at__gte": day_ago}) == {str(login.pk)}
    assert _ids(client, "/api/v1/audit-logs", {"created_at__lte": day_ago}) == {str(update.pk)}
    assert client.get("/api/v1/audit-logs", {"action": "explode"}).status_code == 400


def test_audit_logs_page_with_a_cursor(admin):
    start = timezone.now() - timedelta(hours=1)
    entries = [
        AuditLogFactory(organization=admin.organization, created_at=start + timedelta(seconds=i)) for i in range(3)
    ]
    client = client_as(admin)

    first = client.get("/api/v1/audit-logs", {"page_size": 2}).json()
    assert [row["id"] for row in first["results"]] == [str(entries[2].pk), str(entries[1].pk)]
    assert "cursor=" in first["next"]
    assert [row["id"] for row in client.get(first["next"]).json()["results"]] == [str(entries[0].pk)]


def test_audit_logs_are_read_only(admin):
    entry = AuditLogFactory(organization=admin.organization)
    client = client_as(UserFactory(organization=admin.organization, role=User.Role.OWNER))
    assert client.delete(f"/api/v1/audit-logs/{entry.pk}").status_code == 405
    assert client.patch(f"/api/v1/audit-logs/{entry.pk}", {"action": "login"}, format="json").status_code == 405
    assert AuditLog.objects.filter(pk=entry.pk, action=entry.action).exists()


def test_an_api_key_needs_the_audit_logs_scope(admin):
    AuditLogFactory(organization=admin.organization)
    for scopes, expected in ((["licenses:read"], 403), (["audit-logs:read"], 200)):
        raw_key = api_key_create(user=admin, name="audit", scopes=scopes).raw_key
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
        assert client.get("/api/v1/audit-logs").status_code == expected


# --- system events -----------------------------------------------------------------------------


def test_system_events_are_staff_only(admin, staff):
    event = SystemEventFactory()
    owner = UserFactory(organization=admin.organization, role=User.Role.OWNER)
    assert client_as(owner).get("/api/v1/system-events").status_code == 403
    assert client_as(owner).get(f"/api/v1/system-events/{event.pk}").status_code == 403
    assert _ids(client_as(staff), "/api/v1/system-events") == {str(event.pk)}


def test_system_event_filters_and_cursor(staff):
    start = timezone.now() - timedelta(hours=1)
    error = SystemEventFactory(event_type="key.unhealthy", severity=SystemEvent.Severity.ERROR, created_at=start)
    info = SystemEventFactory(event_type="job.finished", created_at=start + timedelta(seconds=1))
    latest = SystemEventFactory(event_type="job.finished", created_at=start + timedelta(seconds=2))
    client = client_as(staff)

    assert _ids(client, "/api/v1/system-events", {"severity": "error"}) == {str(error.pk)}
    assert _ids(client, "/api/v1/system-events", {"event_type": "job.finished"}) == {str(info.pk), str(latest.pk)}
    first = client.get("/api/v1/system-events", {"page_size": 2}).json()
    assert [row["id"] for row in first["results"]] == [str(latest.pk), str(info.pk)]
    assert "cursor=" in first["next"]
    assert client.patch(f"/api/v1/system-events/{info.pk}", {"severity": "debug"}, format="json").status_code == 405
