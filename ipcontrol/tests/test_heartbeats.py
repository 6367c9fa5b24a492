"""Heartbeats and leases, under time travel: a machine's lease is extended by its heartbeats,
lapses (window plus grace), is released by the lease job with ``machine.heartbeat_lost`` and its
seat freed; the machine is re-admitted when it beats again if a seat is free. Floating licenses
count live leases."""

from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.utils import timezone
from rest_framework.test import APIClient

from ipcontrol.buffer import validation_buffer_flush
from ipcontrol.models import LicenseIpBinding, LicenseValidation
from ipcontrol.selectors import ipcontrol_config
from ipcontrol.services import bindings_deactivate_stale, leases_release_lapsed
from licensing.models import MachineScheme
from settings_app.models import WebhookDelivery
from tests import factories as f

pytestmark = pytest.mark.django_db

WINDOW = 300


def _post(route, license, fingerprint):
    response = APIClient().post(
        f"/api/v1/licenses/{route}", {"key": license.license_key, "fingerprint": fingerprint, "hostname": "ws"},
        format="json", REMOTE_ADDR="203.0.113.8",
    )  # fmt: skip
    assert response.status_code == 200, response.content
    return response.json()


@pytest.fixture
def floating():
    plan = f.SubscriptionPlanFactory(
        limits={"max_machines": 1}, machine_scheme=MachineScheme.FLOATING, heartbeat_window_seconds=WINDOW
    )
    license = f.LicenseFactory(plan=plan)
    f.WebhookFactory(organization=license.organization, events=["*"])
    return license


def _binding(license, fingerprint):
    return LicenseIpBinding.objects.get(license=license, machine_id=fingerprint)


def _lapse() -> timedelta:
    return timedelta(seconds=WINDOW + ipcontrol_config().heartbeat_grace_seconds + 1)


def test_heartbeats_extend_the_lease(floating):
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        activated = _post("activate", floating, "fp-1")
        assert activated["lease_expires_at"] == (start + timedelta(seconds=WINDOW)).isoformat()
    for elapsed in (200, 400, 600):  # each beat within the window: the machine keeps its seat
        with time_machine.travel(start + timedelta(seconds=elapsed), tick=False):
            body = _post("heartbeat", floating, "fp-1")
            assert (body["valid"], body["code"]) == (True, "ALIVE")
            validation_buffer_flush()
            assert leases_release_lapsed() == 0
    binding = _binding(floating, "fp-1")
    assert binding.lease_expires_at == start + timedelta(seconds=600 + WINDOW)
    assert binding.last_heartbeat_at == start + timedelta(seconds=600)
    assert binding.is_active
    assert LicenseValidation.objects.filter(license=floating, result_code="ALIVE").count() == 3


def test_a_lapsed_lease_is_released_and_the_machine_readmitted_when_a_seat_is_free(floating):
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        _post("activate", floating, "fp-1")
    with time_machine.travel(start + _lapse() - timedelta(seconds=2), tick=False):
        assert leases_release_lapsed() == 0  # within the grace
    with time_machine.travel(start + _lapse(), tick=False):
        assert leases_release_lapsed() == 1
        binding = _binding(floating, "fp-1")
        assert (binding.is_active, binding.deactivation_reason) == (False, "heartbeat_lost")
        lost = WebhookDelivery.objects.get(event_type="machine.heartbeat_lost").payload["data"]
        assert lost["machine_id"] == "fp-1"
        assert _post("validate", floating, "fp-1")["code"] == "NO_MACHINE"
        # Its seat is free: another machine takes it, and the first cannot come back meanwhile.
        assert _post("activate", floating, "fp-2")["code"] == "ACTIVATED"
        refused = _post("heartbeat", floating, "fp-1")
        assert (refused["valid"], refused["code"]) == (False, "TOO_MANY_MACHINES")
        _post("deactivate", floating, "fp-2")
        back = _post("heartbeat", floating, "fp-1")
        assert (back["valid"], back["code"]) == (True, "ALIVE")
        binding = _binding(floating, "fp-1")
        assert (binding.is_active, binding.deactivation_reason, binding.activation_count) == (True, "", 2)
        assert binding.lease_expires_at == start + _lapse() + timedelta(seconds=WINDOW)
        assert _post("validate", floating, "fp-1")["code"] == "VALID"
    assert WebhookDelivery.objects.filter(event_type="machine.activated").count() == 3


def test_a_machine_deactivated_on_purpose_is_not_readmitted_by_a_heartbeat(floating):
    _post("activate", floating, "fp-1")
    _post("deactivate", floating, "fp-1")
    body = _post("heartbeat", floating, "fp-1")
    assert (body["valid"], body["code"]) == (False, "NO_MACHINE")
    assert _post("heartbeat", floating, "never-seen")["code"] == "NO_MACHINE"
    assert not _binding(floating, "fp-1").is_active


def test_floating_licenses_count_live_leases_not_machines_seen(floating):
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        _post("activate", floating, "fp-1")
    # The lease lapsed and the job has not run yet: the activation releases it and takes the seat.
    with time_machine.travel(start + _lapse(), tick=False):
        assert _post("activate", floating, "fp-2")["code"] == "ACTIVATED"
    active = LicenseIpBinding.objects.filter(license=floating, is_active=True)
    assert list(active.values_list("machine_id", flat=True)) == ["fp-2"]
    assert _binding(floating, "fp-1").deactivation_reason == "heartbeat_lost"


def test_a_heartbeat_flushed_after_release_does_not_revive_the_machine(floating):
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        _post("activate", floating, "fp-1")
        _post("heartbeat", floating, "fp-1")  # buffered, not flushed yet
    with time_machine.travel(start + _lapse(), tick=False):
        assert leases_release_lapsed() == 1
        validation_buffer_flush()
    binding = _binding(floating, "fp-1")
    assert not binding.is_active and binding.lease_expires_at is None


def test_node_locked_without_a_window_never_lapses():
    license = f.LicenseFactory(plan=f.SubscriptionPlanFactory(limits={"max_machines": 1}))
    _post("activate", license, "fp-1")
    body = _post("heartbeat", license, "fp-1")
    assert body["code"] == "ALIVE" and "lease_expires_at" not in body
    with time_machine.travel(timezone.now() + timedelta(days=20), tick=False):
        assert leases_release_lapsed() == 0
    assert _binding(license, "fp-1").is_active


def test_heartbeat_refusals_and_malformed_beats(floating):
    assert _post("heartbeat", floating, "fp")["code"] == "NO_MACHINE"
    response = APIClient().post("/api/v1/licenses/heartbeat", {"key": floating.license_key}, format="json")
    assert response.status_code == 400
    floating.status = "suspended"
    floating.save()
    assert _post("heartbeat", floating, "fp")["code"] == "SUSPENDED"


def test_the_lease_job_runs_well_within_a_minute():
    entry = settings.CELERY_BEAT_SCHEDULE["release-lapsed-license-leases"]
    assert entry["task"] == "ipcontrol.release_lapsed_leases" and entry["schedule"] <= 30


def test_a_machine_freed_as_stale_is_announced_and_readmitted_by_its_next_heartbeat(floating):
    _post("activate", floating, "fp-1")
    LicenseIpBinding.objects.filter(license=floating).update(last_seen=timezone.now() - timedelta(days=40))
    assert bindings_deactivate_stale() == 1
    event = WebhookDelivery.objects.get(event_type="machine.deactivated").payload["data"]
    assert (event["machine_id"], event["is_active"], event["deactivation_reason"]) == ("fp-1", False, "stale")
    assert _post("heartbeat", floating, "fp-1")["code"] == "ALIVE"
    assert _binding(floating, "fp-1").is_active
