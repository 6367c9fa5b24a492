"""License lifecycle: suspend, reinstate, renew, revoke, expire — through the services, the staff
API, the commands and the beat task. Each transition is audited and emits its event."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from audit.models import AuditLog
from identity.models import User
from licensing import services
from licensing.models import License
from licensing.services import LicenseStateConflict
from licensing.tasks import expire_licenses
from settings_app.models import WebhookDelivery
from tests import factories as f
from tests.clients import client_as

pytestmark = pytest.mark.django_db


@pytest.fixture
def license():
    license = f.LicenseFactory(status=License.Status.TRIAL)
    f.WebhookFactory(organization=license.organization, events=["*"])
    return license


def _events(license) -> list[str]:
    return list(
        WebhookDelivery.objects.filter(organization=license.organization)
        .order_by("created_at")
        .values_list("event_type", flat=True)
    )


def test_suspend_and_reinstate_return_to_the_previous_status(license):
    services.license_suspend(license=license, reason="payment overdue")
    license.refresh_from_db()
    assert (license.status, license.status_reason) == ("suspended", "payment overdue")
    assert license.suspended_at is not None
    services.license_reinstate(license=license)
    license.refresh_from_db()
    assert license.status == "trial" and license.suspended_at is None
    assert _events(license) == ["license.suspended", "license.reinstated"]
    changes = list(
        AuditLog.objects.filter(resource_id=str(license.pk), action="update")
        .order_by("created_at")
        .values_list("changes", flat=True)
    )
    assert [c["status"] for c in changes] == [["trial", "suspended"], ["suspended", "trial"]]


@pytest.mark.parametrize(
    ("status", "transition", "code"),
    [
        ("suspended", "license_suspend", "license_already_suspended"),
        ("revoked", "license_suspend", "license_revoked"),
        ("expired", "license_suspend", "license_expired"),
        ("active", "license_reinstate", "license_not_suspended"),
        ("revoked", "license_revoke", "license_already_revoked"),
    ],
)
def test_invalid_transitions_are_conflicts_that_change_nothing(status, transition, code):
    license = f.LicenseFactory(status=status)
    with pytest.raises(LicenseStateConflict) as raised:
        getattr(services, transition)(license=license)
    assert raised.value.code == code and raised.value.status_code == 409
    license.refresh_from_db()
    assert license.status == status
    assert not AuditLog.objects.filter(resource_id=str(license.pk)).exists()


def test_renew_extends_from_expiry_or_now_and_revives_expired():
    future = timezone.now() + timedelta(days=10)
    license = f.LicenseFactory(expires_at=future)
    services.license_renew(license=license, days=30)
    license.refresh_from_db()
    assert license.expires_at == future + timedelta(days=30)

    expired = f.LicenseFactory(status="expired", expires_at=timezone.now() - timedelta(days=3))
    before = timezone.now()
    services.license_renew(license=expired, days=30)
    expired.refresh_from_db()
    assert expired.status == "active"
    assert before + timedelta(days=30) <= expired.expires_at <= timezone.now() + timedelta(days=30)

    with pytest.raises(LicenseStateConflict):
        services.license_renew(license=f.LicenseFactory(status="revoked"), days=30)


def test_revoke_is_final(license):
    services.license_revoke(license=license, reason="fraud")
    license.refresh_from_db()
    assert license.status == "revoked" and license.revoked_at is not None
    for transition in (services.license_reinstate, services.license_suspend):
        with pytest.raises(LicenseStateConflict):
            transition(license=license)
    assert _events(license) == ["license.revoked"]


def test_expire_due_marks_only_past_live_licenses():
    past = f.LicenseFactory(expires_at=timezone.now() - timedelta(minutes=1))
    past_trial = f.LicenseFactory(status="trial", expires_at=timezone.now() - timedelta(days=1))
    future = f.LicenseFactory(expires_at=timezone.now() + timedelta(days=1))
    suspended = f.LicenseFactory(status="suspended", expires_at=timezone.now() - timedelta(days=1))
    never = f.LicenseFactory(expires_at=None)
    out = StringIO()
    call_command("expire_licenses", stdout=out)
    assert "2 license(s) expired" in out.getvalue()
    statuses = {x.pk: x.status for x in License.objects.all()}
    assert statuses[past.pk] == statuses[past_trial.pk] == "expired"
    assert statuses[future.pk] == "active" and statuses[suspended.pk] == "suspended"
    assert statuses[never.pk] == "active"
    assert services.license_expire_due() == 0
    assert AuditLog.objects.filter(resource_id=str(past.pk), changes__status=["active", "expired"]).exists()


def _announced(license, event_type: str) -> dict:
    """The one event of ``event_type`` the license's organization was sent."""
    (delivery,) = WebhookDelivery.objects.filter(organization=license.organization, event_type=event_type)
    return delivery.payload["data"]


def test_the_beat_expiry_and_a_renewal_are_announced(license):
    License.objects.filter(pk=license.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    assert expire_licenses() == 1
    assert _events(license) == ["license.expired"]
    assert _announced(license, "license.expired")["status"] == "expired"

    services.license_renew(license=license, days=30)
    license.refresh_from_db()
    assert _events(license) == ["license.expired", "license.renewed"]
    assert _announced(license, "license.renewed") == {
        "id": str(license.pk),
        "organization": str(license.organization_id),
        "plan": license.plan.code,
        "status": "active",
        "expires_at": license.expires_at.isoformat(),
    }
    changes = (
        AuditLog.objects.filter(resource_id=str(license.pk), action="update")
        .order_by("created_at")
        .values_list("changes", flat=True)
    )
    assert [c["status"] for c in changes] == [["trial", "expired"], ["expired", "active"]]


# --- API ---------------------------------------------------------------------------------------


def test_staff_change_a_license_through_the_api(license):
    client = client_as(f.StaffUserFactory())
    url = f"/api/v1/licenses/{license.pk}"
    response = client.post(f"{url}/suspend", {"reason": "chargeback"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "suspended"
    assert client.post(f"{url}/suspend", {}, format="json").json()["error"]["code"] == "license_already_suspended"
    assert client.post(f"{url}/reinstate", format="json").json()["status"] == "trial"
    renewed = client.post(f"{url}/renew", {"days": 365}, format="json")
    assert renewed.status_code == 200
    assert client.post(f"{url}/renew", {}, format="json").status_code == 400
    response = client.post(f"{url}/revoke", {"reason": "fraud"}, format="json")
    assert response.json()["status"] == "revoked"
    conflict = client.post(f"{url}/reinstate", format="json")
    assert conflict.status_code == 409 and conflict.json()["error"]["code"] == "license_not_suspended"
    audit = AuditLog.objects.filter(resource_id=str(license.pk), source="api").count()
    assert audit == 4


@pytest.mark.parametrize("role", [User.Role.OWNER, User.Role.ADMIN])
def test_an_organization_sees_its_license_but_cannot_change_it(license, role):
    owner = f.UserFactory(organization=license.organization, role=role)
    client = client_as(owner)
    assert client.get(f"/api/v1/licenses/{license.pk}").status_code == 200
    for action in ("suspend", "reinstate", "revoke"):
        assert client.post(f"/api/v1/licenses/{license.pk}/{action}", {}, format="json").status_code == 403
    assert client.post(f"/api/v1/licenses/{license.pk}/renew", {"days": 9}, format="json").status_code == 403
    plan = f.SubscriptionPlanFactory()
    payload = {"organization": license.organization.slug, "plan": plan.code}
    assert client.post("/api/v1/licenses", payload, format="json").status_code == 403
    license.refresh_from_db()
    assert license.status == "trial"


def test_another_organizations_license_cannot_be_reached(license):
    stranger = f.UserFactory(role=User.Role.OWNER)
    assert client_as(stranger).get(f"/api/v1/licenses/{license.pk}").status_code == 404


def test_staff_issue_a_license_through_the_api():
    organization = f.OrganizationFactory(slug="globex")
    plan = f.SubscriptionPlanFactory(code="team")
    client = client_as(f.StaffUserFactory())
    payload = {
        "organization": "globex",
        "plan": "team",
        "status": "trial",
        "expires_in_days": 14,
        "custom_limits": {"max_machines": 5},
    }
    response = client.post("/api/v1/licenses", payload, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "trial" and body["effective_limits"]["max_machines"] == 5
    license = License.objects.get(pk=body["id"])
    assert license.organization == organization and license.plan == plan
    bad = client.post("/api/v1/licenses", {**payload, "custom_limits": {"max_machines": -1}}, format="json")
    assert bad.status_code == 400
    assert client.post("/api/v1/licenses", {**payload, "plan": "nope"}, format="json").status_code == 400


# --- commands ----------------------------------------------------------------------------------


def test_issue_license_command():
    f.OrganizationFactory(slug="initech")
    f.SubscriptionPlanFactory(code="pro")
    out, err = StringIO(), StringIO()
    call_command("issue_license", "--org", "initech", "--plan", "pro", "--expires-in-days", "7", "--trial",
                 stdout=out, stderr=err)  # fmt: skip
    license = License.objects.get(license_key=out.getvalue().strip())
    assert license.status == "trial" and license.organization.slug == "initech"
    assert timedelta(days=6) < license.expires_at - timezone.now() <= timedelta(days=7)
    with pytest.raises(CommandError, match="No organization"):
        call_command("issue_license", "--org", "nope", "--plan", "pro", stdout=out, stderr=err)
    with pytest.raises(CommandError, match="at least 1"):
        call_command("issue_license", "--org", "initech", "--plan", "pro", "--expires-in-days", "0",
                     stdout=out, stderr=err)  # fmt: skip
