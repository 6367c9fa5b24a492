"""One customer's endpoint that hangs delays nobody else: another organization's webhook goes out
within seconds and the 2-s validation flush keeps its cadence while 50 events wait for it.

The workers run as the README's production commands run them (one per queue family; the webhooks
one a thread pool), with Celery beat, on the test run's PostgreSQL and Redis; the endpoints are
local receivers on 127.0.0.1."""

import os
import signal
import time

import pytest
from rest_framework.test import APIClient

from celaest.celery import app as celery_app
from identity.models import User
from ipcontrol.models import LicenseValidation
from settings_app.services import webhooks
from settings_app.services.outbox import emit_event
from tests import factories as f
from tests.workers import celery_start

from .receiver import Answer, Receiver

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

HANGING_EVENTS = 50
WEBHOOK_THREADS = 8  # two endpoints at the cap still leave threads for everyone else


def _wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def _webhook(url: str):
    owner = f.UserFactory(role=User.Role.OWNER)
    webhooks.webhook_create(organization=owner.organization, user=owner, name="R", url=url, events=["order.paid"])
    return owner.organization


def _validate(license) -> None:
    response = APIClient().post(
        "/api/v1/licenses/validate",
        {"key": license.license_key, "fingerprint": "fp-1", "hostname": "ws", "nonce": "n"},
        format="json",
        REMOTE_ADDR="203.0.113.5",
    )
    assert response.status_code == 200, response.content


def _seconds_until_delivered(receiver: Receiver, organization) -> float:
    before = len(receiver.received)
    sent = time.monotonic()
    emit_event("order.paid", organization=organization, payload={"order": "ORD-B"})  # commits
    assert _wait_for(lambda: len(receiver.received) > before, 60), "never delivered"
    return time.monotonic() - sent


def _seconds_until_flushed(license) -> float:
    before = LicenseValidation.objects.count()
    sent = time.monotonic()
    _validate(license)
    assert _wait_for(lambda: LicenseValidation.objects.count() > before, 120), "never flushed"
    return time.monotonic() - sent


def test_a_hanging_endpoint_delays_neither_another_organization_nor_the_validation_flush(tmp_path, settings):
    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.WEBHOOK_REQUIRE_HTTPS = False
    license = f.LicenseFactory(plan=f.SubscriptionPlanFactory(limits={"max_machines": 2}))
    celery_app.control.purge()  # what earlier tests left in the broker is not these workers' business
    processes = []
    with Receiver(Answer(200, b"late", delay=120)) as hanging, Receiver() as healthy:
        slow_org, other_org = _webhook(hanging.url()), _webhook(healthy.url())
        try:
            processes += [
                celery_start(tmp_path, "worker", "-Q", "webhooks", "-n", "webhooks@%h", "--pool", "threads",
                       "--concurrency", str(WEBHOOK_THREADS), "--without-gossip", "--without-mingle"),
                celery_start(tmp_path, "worker", "-Q", "platform", "-n", "platform@%h", "--concurrency", "1",
                       "--without-gossip", "--without-mingle"),
                celery_start(tmp_path, "beat", "-s", str(tmp_path / "celerybeat-schedule")),
            ]  # fmt: skip
            # Up and consuming (a worker takes a few seconds to start, more on a busy machine).
            assert _seconds_until_delivered(healthy, other_org) < 60
            _validate(license)  # activates nothing: NO_MACHINE, still a row to flush
            assert _wait_for(lambda: LicenseValidation.objects.exists(), 60), "the flush never ran"

            hang_started = time.monotonic()
            for number in range(HANGING_EVENTS):
                emit_event("order.paid", organization=slow_org, payload={"order": f"ORD-A-{number}"})
            cap = settings.WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT
            assert _wait_for(lambda: len(hanging.received) >= cap, 30), "the hanging endpoint got nothing"

            delivery_delays, flush_delays = [], []
            for _ in range(3):
                delivery_delays.append(_seconds_until_delivered(healthy, other_org))
                flush_delays.append(_seconds_until_flushed(license))
            hanging_for = time.monotonic() - hang_started
            in_flight = len(hanging.received)
        finally:
            for process in processes:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
            celery_app.control.purge()
    print(f"other organization's delivery: {[round(d, 2) for d in delivery_delays]} s; "
          f"validation flushed after {[round(d, 2) for d in flush_delays]} s")  # fmt: skip
    assert max(delivery_delays) < 3, delivery_delays
    assert max(flush_delays) < 5, flush_delays  # a flush every 2 s, plus the flush itself
    if hanging_for < settings.WEBHOOK_TIMEOUT_SECONDS:  # no attempt has timed out yet: only the cap's worth
        assert in_flight == cap
