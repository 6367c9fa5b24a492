"""Collision detection: each type with its severity, no duplicate open collision, events, the
quiet-period auto-resolve and resolution by staff."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from audit.models import AuditLog, SystemEvent
from identity.models import User
from ipcontrol import services
from ipcontrol.buffer import validation_buffer_flush
from ipcontrol.collisions import collisions_auto_resolve
from ipcontrol.models import LicenseCollision, LicenseIpBinding
from settings_app.models import SystemConfig, WebhookDelivery
from tests import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def license():
    plan = f.SubscriptionPlanFactory(limits={"max_machines": 2})
    license = f.LicenseFactory(plan=plan)
    f.WebhookFactory(organization=license.organization, events=["license.collision_detected", "collision.resolved"])
    return license


def _validate(license, fingerprint, ip):
    check = services.license_validate(key=license.license_key, fingerprint=fingerprint, ip_address=ip)
    return check.code


def _activate(license, fingerprint, ip="198.51.100.1"):
    return services.license_activate(key=license.license_key, fingerprint=fingerprint, ip_address=ip).code


def _deactivate(license, fingerprint):
    return services.license_deactivate(key=license.license_key, fingerprint=fingerprint).code


def test_over_limit_when_seats_are_passed_around_within_the_window(license):
    for fingerprint in ("a", "b"):
        _activate(license, fingerprint)
        assert _validate(license, fingerprint, "198.51.100.1") == "VALID"
    _deactivate(license, "b")
    _activate(license, "c")
    assert _validate(license, "c", "198.51.100.1") == "VALID"
    validation_buffer_flush()
    collision = LicenseCollision.objects.get(collision_type="over_limit")
    assert collision.severity == "medium"  # 3 machines in the window, 2 allowed
    assert {collision.ip_binding_a.machine_id, collision.ip_binding_b.machine_id} == {"a", "c"}
    assert collision.details == {"machines": 3, "ips": 1, "max_machines": 2}
    assert SystemEvent.objects.filter(event_type="license.collision_detected", severity="warning").exists()
    assert WebhookDelivery.objects.filter(event_type="license.collision_detected").count() == 1

    # Seen again, with a fourth machine: the same collision, raised to high (twice the limit).
    _deactivate(license, "c")
    _activate(license, "d")
    _validate(license, "d", "198.51.100.1")
    validation_buffer_flush()
    collision = LicenseCollision.objects.get(collision_type="over_limit")
    assert collision.severity == "high" and collision.details["machines"] == 4
    assert WebhookDelivery.objects.filter(event_type="license.collision_detected").count() == 1


def test_over_limit_by_ips(license):
    _activate(license, "a", ip="203.0.113.0")
    for n in range(3):
        _validate(license, "a", f"203.0.113.{n}")
        _validate(license, "a", f"203.0.113.{n}")
    validation_buffer_flush()
    over = LicenseCollision.objects.get(collision_type="over_limit")
    assert over.details["ips"] == 3 and over.severity == "medium"
    assert over.ip_binding_b is None


def test_cloned_machine_alternating_between_ips(license):
    _activate(license, "a", ip="203.0.113.1")
    for ip in ("203.0.113.1", "203.0.113.2", "203.0.113.1"):
        _validate(license, "a", ip)
    validation_buffer_flush()
    clone = LicenseCollision.objects.get(collision_type="cloned_machine")
    assert clone.severity == "high" and clone.ip_binding_a.machine_id == "a" and clone.ip_binding_b is None
    assert clone.details["ips"] == ["203.0.113.1", "203.0.113.2"]
    # A third place: still one open collision for the machine, now critical.
    _validate(license, "a", "203.0.113.3")
    _validate(license, "a", "203.0.113.1")
    validation_buffer_flush()
    clone = LicenseCollision.objects.get(collision_type="cloned_machine")
    assert clone.severity == "critical"


def test_a_machine_that_moves_once_is_not_a_clone(license):
    _activate(license, "a", ip="203.0.113.1")
    for ip in ("203.0.113.1", "203.0.113.1", "203.0.113.2", "203.0.113.2"):
        _validate(license, "a", ip)
    validation_buffer_flush()
    assert not LicenseCollision.objects.filter(collision_type="cloned_machine").exists()


def test_activation_churn(license):
    SystemConfig.objects.create(key="ipcontrol.churn_threshold", value=2)
    _activate(license, "a")
    _activate(license, "b")
    for _ in range(2):
        _deactivate(license, "b")
        assert _activate(license, "b") == "ACTIVATED"
    churn = LicenseCollision.objects.get(collision_type="activation_churn")
    assert churn.severity == "low" and churn.details["deactivations"] == 2
    for _ in range(2):
        _deactivate(license, "b")
        _activate(license, "b")
    churn = LicenseCollision.objects.get(collision_type="activation_churn")  # still one
    assert churn.severity == "medium"


def test_normal_use_opens_nothing(license):
    _activate(license, "a")
    _activate(license, "b")
    for _ in range(3):
        _validate(license, "a", "198.51.100.1")
        _validate(license, "b", "198.51.100.2")
    validation_buffer_flush()
    assert not LicenseCollision.objects.exists()


def test_auto_resolve_after_the_quiet_period_and_a_new_one_may_open(license):
    _activate(license, "a", ip="203.0.113.1")
    for ip in ("203.0.113.1", "203.0.113.2", "203.0.113.1"):
        _validate(license, "a", ip)
    validation_buffer_flush()
    collision = LicenseCollision.objects.get()
    assert collisions_auto_resolve() == 0  # not quiet yet
    later = timezone.now() + timedelta(minutes=61)
    assert collisions_auto_resolve(now=later) == 1
    collision.refresh_from_db()
    assert collision.auto_resolved and collision.resolved_at == later
    assert WebhookDelivery.objects.filter(event_type="collision.resolved").count() == 1
    # The anomaly comes back: a new collision, the resolved one stays closed.
    for ip in ("203.0.113.2", "203.0.113.1"):
        _validate(license, "a", ip)
    validation_buffer_flush()
    assert LicenseCollision.objects.filter(resolved_at__isnull=True).count() == 1
    assert LicenseCollision.objects.count() == 2


def test_staff_resolve_by_api_and_owners_cannot(license):
    collision = f.LicenseCollisionFactory(license=license)
    owner = f.UserFactory(organization=license.organization, role=User.Role.OWNER)
    client = APIClient()
    client.force_authenticate(owner)
    url = f"/api/v1/license-collisions/{collision.pk}/resolve"
    assert client.get(f"/api/v1/license-collisions/{collision.pk}").status_code == 200
    assert client.post(url, {}, format="json").status_code == 403
    staff = APIClient()
    staff.force_authenticate(f.StaffUserFactory())
    response = staff.post(url, {"note": "customer confirmed a reinstall"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["resolved_at"] and response.json()["auto_resolved"] is False
    again = staff.post(url, {}, format="json")
    assert again.status_code == 409 and again.json()["error"]["code"] == "collision_already_resolved"
    assert AuditLog.objects.filter(resource_id=str(collision.pk), source="api").exists()


def test_stale_bindings_are_deactivated(license):
    _activate(license, "a")
    _activate(license, "b")
    LicenseIpBinding.objects.filter(machine_id="a").update(last_seen=timezone.now() - timedelta(hours=721))
    assert services.bindings_deactivate_stale() == 1
    assert list(LicenseIpBinding.objects.filter(is_active=True).values_list("machine_id", flat=True)) == ["b"]
    assert _activate(license, "c") == "ACTIVATED"  # the seat was freed


def test_staff_deactivate_a_machine_in_the_admin(license, client):
    from django.contrib import admin
    from django.urls import reverse

    _activate(license, "a")
    client.force_login(User.objects.create_superuser(email="root@ipcontrol.invalid", password="x-long-pass-1"))
    binding = LicenseIpBinding.objects.get()
    client.post(
        reverse("admin:ipcontrol_licenseipbinding_changelist"),
        {"action": "deactivate_bindings", admin.helpers.ACTION_CHECKBOX_NAME: [str(binding.pk)]},
    )
    binding.refresh_from_db()
    assert not binding.is_active and binding.deactivated_at is not None
    assert AuditLog.objects.filter(resource_id=str(binding.pk), source="admin").exists()
    assert _validate(license, "a", "198.51.100.1") == "NO_MACHINE"


def test_detection_only_queries_licenses_seen_on_two_machines_or_ips(license):
    """A flush remembers each license's machines and IPs (in Redis) and runs the detection
    queries only for licenses seen on two of either within the window, across flushes."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def flush_queries():
        with CaptureQueriesContext(connection) as queries:
            validation_buffer_flush()
        return [query["sql"] for query in queries if "COUNT(DISTINCT" in query["sql"]]

    _activate(license, "a")
    for _ in range(3):
        _validate(license, "a", "198.51.100.1")
    assert flush_queries() == []  # one machine, one address: nothing to look for
    _deactivate(license, "a")
    _activate(license, "b")
    _validate(license, "b", "198.51.100.1")
    assert flush_queries() != []  # a second machine in the window, seen in an earlier flush
    assert not LicenseCollision.objects.exists()  # two machines, two allowed
    _deactivate(license, "b")
    _activate(license, "c")
    _validate(license, "c", "198.51.100.1")
    validation_buffer_flush()
    assert LicenseCollision.objects.get(collision_type="over_limit").details["machines"] == 3


def test_candidates_of_a_large_flush_sent_in_several_script_calls():
    """A flush's attempts reach Redis in calls of about SEEN_BATCH attempts (a long script would
    stall every validation): each license's flag still comes back for that license, and a license
    with more attempts than a call holds is not split."""
    import uuid

    from ipcontrol.collisions import SEEN_BATCH, collision_candidates

    now = timezone.now().isoformat()
    licenses = [str(uuid.uuid4()) for _ in range(3 * SEEN_BATCH)]
    busy = {licenses[1], licenses[SEEN_BATCH + 3], licenses[-1]}
    heavy = licenses[SEEN_BATCH]

    def row(license_id, machine, ip="198.51.100.1"):
        return {"license_id": license_id, "is_valid": True, "created_at": now, "machine_id": machine, "ip_address": ip}

    rows = [row(license_id, "m1") for license_id in licenses]
    rows += [row(license_id, "m2") for license_id in busy]  # a second machine
    rows += [row(heavy, "m1") for _ in range(2 * SEEN_BATCH)] + [row(heavy, "m1", "203.0.113.9")]  # a second IP
    assert collision_candidates(rows) == busy | {heavy}
