"""Under real concurrency (threads, each with its own PostgreSQL connection): max_machines holds
(for activations and for machines re-admitted by their heartbeats), and no validation attempt is
lost between the buffer and the table."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from django.test import override_settings
from rest_framework.test import APIClient

from ipcontrol.buffer import validation_buffer_flush, validation_buffer_length
from ipcontrol.models import LicenseIpBinding, LicenseValidation
from licensing.models import MachineScheme
from tests import factories as f

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _in_threads(count: int, work) -> list:
    barrier = threading.Barrier(count)

    def run(n):
        try:
            barrier.wait()
            return work(n)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


def test_50_parallel_activations_leave_exactly_max_machines():
    plan = f.SubscriptionPlanFactory(limits={"max_machines": 3})
    license = f.LicenseFactory(plan=plan)

    def activate(n):
        response = APIClient().post(
            "/api/v1/licenses/activate",
            {"key": license.license_key, "fingerprint": f"machine-{n}", "hostname": f"host-{n}"},
            format="json",
            REMOTE_ADDR=f"198.51.100.{n}",
        )
        assert response.status_code == 200, response.content
        return response.json()["code"]

    codes = _in_threads(50, activate)
    assert codes.count("ACTIVATED") == 3
    assert codes.count("TOO_MANY_MACHINES") == 47
    assert LicenseIpBinding.objects.filter(license=license, is_active=True).count() == 3
    assert LicenseValidation.objects.filter(license=license).count() == 50


def test_parallel_validations_lose_no_validation_row():
    license = f.LicenseFactory()
    LicenseIpBinding.objects.create(license=license, organization=license.organization, machine_id="fp")
    per_thread = 40
    flushed = []
    stop = threading.Event()

    def flusher():
        # Flushes race with the writers, as the beat job does in production.
        while not stop.is_set():
            flushed.append(validation_buffer_flush())
        connection.close()

    background = threading.Thread(target=flusher)
    background.start()

    def validate(n):
        client = APIClient()
        for i in range(per_thread):
            response = client.post(
                "/api/v1/licenses/validate",
                {"key": license.license_key, "fingerprint": "fp" if i % 2 else f"other-{n}"},
                format="json",
                REMOTE_ADDR=f"10.0.{n}.{i}",
            )
            assert response.status_code == 200, response.content

    try:
        with override_settings(LICENSE_VALIDATE_RATE_PER_KEY=100_000):
            _in_threads(20, validate)
    finally:
        stop.set()
        background.join()
    flushed.append(validation_buffer_flush())
    assert validation_buffer_length() == 0
    assert LicenseValidation.objects.count() == 20 * per_thread == sum(flushed)
    assert LicenseValidation.objects.filter(result_code="VALID").count() == 20 * per_thread // 2


def _call(route: str, key: str, fingerprint: str, n: int) -> str:
    response = APIClient().post(
        f"/api/v1/licenses/{route}",
        {"key": key, "fingerprint": fingerprint, "hostname": f"host-{n}"},
        format="json",
        REMOTE_ADDR=f"198.51.100.{n}",
    )
    assert response.status_code == 200, response.content
    return response.json()["code"]


def test_a_one_seat_floating_license_admits_one_of_50_concurrent_activations_and_heartbeats():
    plan = f.SubscriptionPlanFactory(
        limits={"max_machines": 1}, machine_scheme=MachineScheme.FLOATING, heartbeat_window_seconds=60
    )
    license = f.LicenseFactory(plan=plan)
    with override_settings(LICENSE_VALIDATE_RATE_PER_KEY=100_000):
        codes = _in_threads(50, lambda n: _call("activate", license.license_key, f"machine-{n}", n))
        assert codes.count("ACTIVATED") == 1 and codes.count("TOO_MANY_MACHINES") == 49
        # Every machine was released for a lapsed lease; all 50 beat again at once: one comes back.
        LicenseIpBinding.objects.filter(license=license).update(
            is_active=False, deactivation_reason="heartbeat_lost", lease_expires_at=None
        )
        LicenseIpBinding.objects.bulk_create(
            [
                LicenseIpBinding(
                    license=license,
                    organization=license.organization,
                    machine_id=f"machine-{n}",
                    is_active=False,
                    deactivation_reason="heartbeat_lost",
                )  # fmt: skip
                for n in range(50)
                if not LicenseIpBinding.objects.filter(license=license, machine_id=f"machine-{n}").exists()
            ]
        )
        beats = _in_threads(50, lambda n: _call("heartbeat", license.license_key, f"machine-{n}", n))
    assert beats.count("ALIVE") == 1 and beats.count("TOO_MANY_MACHINES") == 49
    assert LicenseIpBinding.objects.filter(license=license, is_active=True).count() == 1
