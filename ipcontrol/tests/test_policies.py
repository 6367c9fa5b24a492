"""Machine policies: the plan's scheme, machine limit, overage allowance and heartbeat window,
overridden per license; entitlements; the machine events; and the billing state's warning."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from rest_framework.test import APIClient

from audit.models import AuditLog
from celaest.errors import InvalidInput
from ipcontrol.buffer import validation_buffer_flush
from ipcontrol.certificates import certificate_verify
from ipcontrol.models import LicenseIpBinding, LicenseValidation
from licensing.models import BillingState, License, MachineScheme, OverageAllowance
from licensing.selectors import FLOATING_DEFAULT_HEARTBEAT_SECONDS, license_policy
from licensing.services import license_billing_state_set, license_policy_set
from settings_app.models import WebhookDelivery
from tests import factories as f

pytestmark = pytest.mark.django_db


def _post(route, payload):
    response = APIClient().post(f"/api/v1/licenses/{route}", payload, format="json", REMOTE_ADDR="203.0.113.7")
    assert response.status_code == 200, response.content
    return response.json()


def _license(*, max_machines=2, features=(), **plan_policy):
    plan = f.SubscriptionPlanFactory(limits={"max_machines": max_machines}, features=list(features), **plan_policy)
    license = f.LicenseFactory(plan=plan)
    f.WebhookFactory(organization=license.organization, events=["*"])
    return license


def _events(license, event_type):
    return [
        delivery.payload["data"]
        for delivery in WebhookDelivery.objects.filter(organization=license.organization, event_type=event_type)
    ]


@pytest.mark.parametrize(
    ("max_machines", "allowance", "ceiling"),
    [(4, 125, 5), (3, 125, 3), (2, 150, 3), (3, 150, 4), (1, 200, 2), (2, 100, 2)],
)
def test_overage_allowance_admits_machines_up_to_its_edge(max_machines, allowance, ceiling):
    license = _license(max_machines=max_machines, overage_allowance=allowance)
    codes = [_post("activate", {"key": license.license_key, "fingerprint": f"fp-{n}"}) for n in range(ceiling + 1)]
    assert [body["code"] for body in codes] == (
        ["ACTIVATED"] * max_machines + ["OVERAGE"] * (ceiling - max_machines) + ["TOO_MANY_MACHINES"]
    )
    assert [body["valid"] for body in codes] == [True] * ceiling + [False]
    assert codes[0]["license"]["machine_ceiling"] == ceiling
    assert LicenseIpBinding.objects.filter(license=license, is_active=True).count() == ceiling
    overage = _events(license, "license.overage")
    assert len(overage) == ceiling - max_machines
    assert all(event["max_machines"] == max_machines for event in overage)
    # Validation answers the machines past the limit valid, with the overage code.
    last = _post("validate", {"key": license.license_key, "fingerprint": f"fp-{ceiling - 1}"})
    first = _post("validate", {"key": license.license_key, "fingerprint": "fp-0"})
    assert first["code"] == "VALID"
    assert (last["valid"], last["code"]) == (True, "OVERAGE" if ceiling > max_machines else "VALID")


def test_license_overrides_the_plans_policy():
    license = _license(max_machines=2, overage_allowance=OverageAllowance.X2, heartbeat_window_seconds=900)
    policy = license_policy(license=license)
    assert (policy.machine_scheme, policy.machine_ceiling, policy.heartbeat_window_seconds) == ("node_locked", 4, 900)
    license_policy_set(
        license=license,
        changes={"machine_scheme": MachineScheme.FLOATING, "overage_allowance": OverageAllowance.NONE,
                 "heartbeat_window_seconds": 120},
    )  # fmt: skip
    policy = license_policy(license=License.objects.get(pk=license.pk))
    assert (policy.machine_scheme, policy.machine_ceiling, policy.heartbeat_window_seconds) == ("floating", 2, 120)
    # Validation sees the change at once: its snapshot was retired.
    assert _post("activate", {"key": license.license_key, "fingerprint": "a"})["code"] == "ACTIVATED"
    assert _post("activate", {"key": license.license_key, "fingerprint": "b"})["code"] == "ACTIVATED"
    assert _post("activate", {"key": license.license_key, "fingerprint": "c"})["code"] == "TOO_MANY_MACHINES"
    body = _post("validate", {"key": license.license_key, "fingerprint": "a"})
    assert body["license"]["machine_scheme"] == "floating" and body["license"]["heartbeat_window_seconds"] == 120


def test_floating_without_a_window_leases_with_the_default_and_zero_turns_heartbeats_off():
    license = _license(machine_scheme=MachineScheme.FLOATING)
    assert license_policy(license=license).heartbeat_window_seconds == FLOATING_DEFAULT_HEARTBEAT_SECONDS
    before = timezone.now()
    _post("activate", {"key": license.license_key, "fingerprint": "a"})
    lease = LicenseIpBinding.objects.get(license=license).lease_expires_at
    assert before + timedelta(seconds=FLOATING_DEFAULT_HEARTBEAT_SECONDS) <= lease
    license_policy_set(license=license, changes={"heartbeat_window_seconds": 0})
    assert license_policy(license=License.objects.get(pk=license.pk)).heartbeat_window_seconds is None


def test_policy_changes_are_validated_and_audited():
    license = _license()
    with pytest.raises(ValidationError) as refused:
        license_policy_set(license=license, changes={"overage_allowance": 130})
    assert "overage_allowance" in refused.value.message_dict
    with pytest.raises(InvalidInput):
        license_policy_set(license=license, changes={"max_users": 3})
    assert License.objects.get(pk=license.pk).overage_allowance is None
    license_policy_set(license=license, changes={"overage_allowance": 150})
    assert AuditLog.objects.filter(resource_id=str(license.pk), changes__overage_allowance=[None, 150]).exists()


def test_machine_events_on_activation_and_deactivation():
    license = _license()
    _post("activate", {"key": license.license_key, "fingerprint": "fp-1"})
    _post("activate", {"key": license.license_key, "fingerprint": "fp-1"})  # idempotent: no second event
    _post("deactivate", {"key": license.license_key, "fingerprint": "fp-1"})
    (activated,) = _events(license, "machine.activated")
    (deactivated,) = _events(license, "machine.deactivated")
    assert activated["machine_id"] == deactivated["machine_id"] == "fp-1"
    assert (activated["is_active"], deactivated["is_active"], deactivated["deactivation_reason"]) == (
        True, False, "client",
    )  # fmt: skip


# --- entitlements ---------------------------------------------------------------------------------


def test_validate_answers_the_missing_entitlements():
    license = _license(features=["export", "sso"])
    license_policy_set(license=license, changes={"entitlements": ["audit-log"]})
    key = license.license_key
    _post("activate", {"key": key, "fingerprint": "fp"})
    held = _post("validate", {"key": key, "fingerprint": "fp", "entitlements": ["sso", "audit-log"]})
    assert (held["valid"], held["code"]) == (True, "VALID")
    assert held["license"]["entitlements"] == ["audit-log", "export", "sso"]
    # Twice: the second answer comes from the process copy of the snapshot (the lean path).
    for _ in range(2):
        missing = _post("validate", {"key": key, "fingerprint": "fp", "entitlements": ["sso", "gpu", "beta"]})
        assert (missing["valid"], missing["code"], missing["missing_entitlements"]) == (
            False, "ENTITLEMENTS_MISSING", ["beta", "gpu"],
        )  # fmt: skip
    validation_buffer_flush()
    assert LicenseValidation.objects.filter(license=license, result_code="ENTITLEMENTS_MISSING").count() == 2


@pytest.mark.parametrize(
    "entitlements",
    [{"a": 1}, "sso", ["ok", 3], [""], ["x" * 65], ["e"] * 51, [None]],
)
def test_malformed_entitlements_are_400(entitlements):
    response = APIClient().post("/api/v1/licenses/validate", {"key": "k", "entitlements": entitlements}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"


def test_offline_certificate_lists_the_entitlements():
    license = _license(features=["export"])
    license_policy_set(license=license, changes={"entitlements": ["sso"]})
    _post("activate", {"key": license.license_key, "fingerprint": "fp"})
    certificate = _post("checkout", {"key": license.license_key, "fingerprint": "fp"})["certificate"]
    assert certificate_verify(certificate, fingerprint="fp")["entitlements"] == ["export", "sso"]


def test_staff_override_the_policy_through_the_api(staff):
    license = _license()
    client = APIClient()
    client.force_authenticate(staff)
    url = f"/api/v1/licenses/{license.pk}/policy"
    response = client.post(url, {"overage_allowance": 150, "entitlements": ["sso"]}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["policy"]["machine_ceiling"] == 3
    assert response.json()["policy"]["entitlements"] == ["sso"]
    assert client.post(url, {"overage_allowance": 130}, format="json").status_code == 400
    assert client.post(url, {"entitlements": "sso"}, format="json").status_code == 400


def test_members_cannot_override_a_policy(owner):
    license = f.LicenseFactory(organization=owner.organization)
    client = APIClient()
    client.force_authenticate(owner)
    response = client.post(f"/api/v1/licenses/{license.pk}/policy", {"overage_allowance": 200}, format="json")
    assert response.status_code == 403
    assert License.objects.get(pk=license.pk).overage_allowance is None


# --- billing state --------------------------------------------------------------------------------


def test_a_past_due_license_stays_valid_with_a_warning():
    license = _license()
    _post("activate", {"key": license.license_key, "fingerprint": "fp"})
    assert "warnings" not in _post("validate", {"key": license.license_key, "fingerprint": "fp"})
    license_billing_state_set(license=license, state=BillingState.PAST_DUE)
    body = _post("validate", {"key": license.license_key, "fingerprint": "fp"})
    assert (body["valid"], body["warnings"]) == (True, ["PAYMENT_PAST_DUE"])
    assert body["license"]["billing_state"] == "past_due"
    license_billing_state_set(license=license, state=BillingState.CURRENT)
    assert "warnings" not in _post("validate", {"key": license.license_key, "fingerprint": "fp"})
