"""A Celery worker killed (SIGKILL) in the middle of a delivery loses nothing: the row stays
pending, and once its lease has run out the sweeper hands it to another worker.

Real worker processes, on the test Redis broker and the test database."""

import os
import signal
import subprocess
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from identity.models import User
from settings_app.models import WebhookDelivery
from settings_app.services import outbox, webhooks
from settings_app.services.outbox import emit_event
from tests import factories as f
from tests.workers import celery_start

from .receiver import Answer, Receiver

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _start_worker(tmp_path) -> subprocess.Popen:
    return celery_start(
        tmp_path, "worker", "--pool=solo", "--without-heartbeat", "--without-mingle", "--without-gossip"
    )


def _wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_a_worker_killed_mid_delivery_loses_nothing(tmp_path, settings):
    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.WEBHOOK_REQUIRE_HTTPS = False
    owner = f.UserFactory(role=User.Role.OWNER)
    with Receiver(Answer(200, b"slow", delay=90), Answer(200, b"ok")) as receiver:
        webhooks.webhook_create(
            organization=owner.organization, user=owner, name="R", url=receiver.url(), events=["order.paid"]
        )
        first_worker = _start_worker(tmp_path)
        try:
            event_id = emit_event("order.paid", organization=owner.organization, payload={"order": "K-1"})  # commits
            # A worker takes a few seconds to start, more on a busy machine.
            assert _wait_for(lambda: len(receiver.received) == 1, 60), "the first worker never sent it"
        finally:
            os.killpg(first_worker.pid, signal.SIGKILL)  # mid-request: the endpoint has not answered
            first_worker.wait(10)

        delivery = WebhookDelivery.objects.get(event_id=event_id)
        assert delivery.status == "pending" and delivery.next_attempt_at > timezone.now()  # claimed, unfinished
        # The lease runs out (120 s in production; moved here instead of waited for).
        WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now() - timedelta(minutes=1))

        second_worker = _start_worker(tmp_path)
        try:
            assert outbox.webhook_deliveries_sweep() == 1
            assert _wait_for(lambda: WebhookDelivery.objects.get(pk=delivery.pk).status == "succeeded", 60), (
                "the sweeper's re-enqueue was not delivered"
            )
        finally:
            os.killpg(second_worker.pid, signal.SIGKILL)
            second_worker.wait(10)

    assert [request.headers["webhook-id"] for request in receiver.received] == [event_id, event_id]
    assert WebhookDelivery.objects.filter(event_id=event_id).count() == 1
