"""Self-service machines: owners and admins rename and deactivate their organization's machines
through the API (members and viewers only see them); a license token lets installed software
manage its own machine, and nothing else, without an organization API key."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone
from rest_framework.test import APIClient

from audit.models import AuditLog
from identity.models import User
from ipcontrol.models import LicenseIpBinding
from licensing.models import LicenseToken
from licensing.services import license_token_create, license_token_revoke
from settings_app.models import WebhookDelivery
from tests import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def license():
    license = f.LicenseFactory()
    f.WebhookFactory(organization=license.organization, events=["*"])
    return license


def _user_client(license, role) -> APIClient:
    client = APIClient()
    client.force_authenticate(f.UserFactory(organization=license.organization, role=role))
    return client


def _machine(license, fingerprint="fp-1", **fields) -> LicenseIpBinding:
    return f.LicenseIpBindingFactory(license=license, machine_id=fingerprint, **fields)


@pytest.mark.parametrize(
    ("role", "allowed"),
    [(User.Role.OWNER, True), (User.Role.ADMIN, True), (User.Role.MEMBER, False), (User.Role.VIEWER, False)],
)
def test_owners_and_admins_rename_and_deactivate_machines(license, role, allowed):
    machine = _machine(license)
    client = _user_client(license, role)
    url = f"/api/v1/license-bindings/{machine.pk}"
    assert client.get(url).status_code == 200  # every member sees them
    renamed = client.patch(url, {"name": "Reception PC", "machine_id": "forged", "is_active": False}, format="json")
    deactivated = client.post(f"{url}/deactivate")
    machine.refresh_from_db()
    if not allowed:
        assert (renamed.status_code, deactivated.status_code) == (403, 403)
        assert (machine.name, machine.is_active) == ("", True)
        return
    assert renamed.status_code == 200 and renamed.json()["name"] == "Reception PC"
    assert deactivated.status_code == 200 and deactivated.json()["deactivation_reason"] == "customer"
    assert (machine.name, machine.machine_id, machine.is_active) == ("Reception PC", "fp-1", False)
    assert WebhookDelivery.objects.filter(event_type="machine.deactivated").count() == 1
    again = client.post(f"{url}/deactivate")
    assert (again.status_code, again.json()["error"]["code"]) == (409, "machine_not_active")


def test_another_organizations_machine_is_absent(license):
    foreign = _machine(f.LicenseFactory())
    client = _user_client(license, User.Role.OWNER)
    url = f"/api/v1/license-bindings/{foreign.pk}"
    assert client.get(url).status_code == 404
    assert client.patch(url, {"name": "mine now"}, format="json").status_code == 404
    assert client.post(f"{url}/deactivate").status_code == 404
    foreign.refresh_from_db()
    assert (foreign.name, foreign.is_active) == ("", True)


def test_a_rename_is_validated(license):
    machine = _machine(license)
    client = _user_client(license, User.Role.ADMIN)
    response = client.patch(f"/api/v1/license-bindings/{machine.pk}", {"name": "x" * 101}, format="json")
    assert response.status_code == 400


# --- license tokens -------------------------------------------------------------------------------


def test_owners_create_tokens_shown_once_and_stored_hashed(license):
    client = _user_client(license, User.Role.OWNER)
    response = client.post("/api/v1/license-tokens", {"license": str(license.pk), "name": "POS"}, format="json")
    assert response.status_code == 201, response.content
    raw = response.json()["token"]
    assert raw.startswith("clt_") and len(raw) > 40
    token = LicenseToken.objects.get(pk=response.json()["id"])
    assert raw not in str(LicenseToken.objects.filter(pk=token.pk).values().get())
    assert token.token_hash != raw and raw.startswith(token.token_prefix)
    listed = client.get("/api/v1/license-tokens").json()["results"]
    assert [row["id"] for row in listed] == [str(token.pk)] and "token" not in listed[0]
    assert raw not in str(list(AuditLog.objects.values()))
    assert client.delete(f"/api/v1/license-tokens/{token.pk}").status_code == 204
    assert LicenseToken.objects.get(pk=token.pk).revoked_at is not None


def test_members_cannot_make_tokens_nor_for_another_organizations_license(license):
    member = _user_client(license, User.Role.MEMBER)
    body = {"license": str(license.pk), "name": "POS"}
    assert member.post("/api/v1/license-tokens", body, format="json").status_code == 403
    assert member.get("/api/v1/license-tokens").status_code == 403
    owner = _user_client(license, User.Role.OWNER)
    foreign = {"license": str(f.LicenseFactory().pk), "name": "theirs"}
    assert owner.post("/api/v1/license-tokens", foreign, format="json").status_code == 400
    assert not LicenseToken.objects.exists()


def _token_client(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"License {raw}")
    return client


def test_a_token_manages_its_own_licenses_machine(license):
    machine = _machine(license, "fp-1")
    other_license_machine = _machine(f.LicenseFactory(organization=license.organization), "fp-2")
    _, raw = license_token_create(license=license, name="installer")
    client = _token_client(raw)
    seen = client.get("/api/v1/licenses/machine", {"fingerprint": "fp-1"})
    assert seen.status_code == 200 and seen.json()["id"] == str(machine.pk)
    renamed = client.patch("/api/v1/licenses/machine", {"fingerprint": "fp-1", "name": "Till 3"}, format="json")
    assert renamed.status_code == 200 and renamed.json()["name"] == "Till 3"
    # The same organization's other license is out of the token's reach.
    assert client.get("/api/v1/licenses/machine", {"fingerprint": "fp-2"}).status_code == 404
    assert client.post("/api/v1/licenses/machine/deactivate", {"fingerprint": "fp-2"}, format="json").status_code == 404
    deactivated = client.post("/api/v1/licenses/machine/deactivate", {"fingerprint": "fp-1"}, format="json")
    assert deactivated.status_code == 200 and deactivated.json()["is_active"] is False
    machine.refresh_from_db()
    other_license_machine.refresh_from_db()
    assert (machine.name, machine.is_active, machine.deactivation_reason) == ("Till 3", False, "client")
    assert other_license_machine.is_active
    again = client.post("/api/v1/licenses/machine/deactivate", {"fingerprint": "fp-1"}, format="json")
    assert again.status_code == 409
    assert LicenseToken.objects.get().last_used_at is not None


def test_a_revoked_expired_or_unknown_token_is_refused(license):
    _machine(license, "fp-1")
    token, raw = license_token_create(license=license, name="short", expires_in_days=1)
    url = "/api/v1/licenses/machine"
    assert _token_client(raw).get(url, {"fingerprint": "fp-1"}).status_code == 200
    with time_machine.travel(timezone.now() + timedelta(days=1, seconds=1)):
        expired = _token_client(raw).get(url, {"fingerprint": "fp-1"})
        assert (expired.status_code, expired.json()["error"]["code"]) == (401, "authentication_failed")
    license_token_revoke(token=token)
    assert _token_client(raw).get(url, {"fingerprint": "fp-1"}).status_code == 401
    assert _token_client("clt_" + "x" * 43).get(url, {"fingerprint": "fp-1"}).status_code == 401
    assert APIClient().get(url, {"fingerprint": "fp-1"}).status_code == 401
    license.soft_delete()
    _, fresh = license_token_create(license=license, name="after delete")
    assert _token_client(fresh).get(url, {"fingerprint": "fp-1"}).status_code == 401


@pytest.mark.parametrize(
    "body", [{}, {"fingerprint": ""}, {"fingerprint": 5}, {"fingerprint": "fp-1", "name": ["x"]}, [1, 2]]
)
def test_malformed_token_requests_are_400(license, body):
    _machine(license, "fp-1")
    _, raw = license_token_create(license=license, name="t")
    response = _token_client(raw).patch("/api/v1/licenses/machine", body, format="json")
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid"
