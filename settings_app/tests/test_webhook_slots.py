"""The cap on the attempts one webhook endpoint has in flight: a slot is taken for each attempt
and given back however it ended; a delivery that finds every slot taken is deferred without
being sent or counted, keeps its row, and comes back on the webhooks queue.

Real Redis (the cache and the broker of the test run) and local receivers on 127.0.0.1."""

import base64
import json
import threading
import time
from datetime import timedelta

import pytest
import redis
from django.conf import settings as django_settings
from django.db import connection
from django.utils import timezone

from celaest.celery import app as celery_app
from identity.models import User
from settings_app.models import WebhookDelivery
from settings_app.services import outbox, webhooks
from settings_app.webhook_slots import endpoint_slot_take, endpoint_slots_in_flight
from tests import factories as f

from .receiver import Answer, Receiver

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def local_allowed(settings):
    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.WEBHOOK_REQUIRE_HTTPS = False
    return settings


def _webhook(url):
    owner = f.UserFactory(role=User.Role.OWNER)
    return webhooks.webhook_create(
        organization=owner.organization, user=owner, name="R", url=url, events=["order.paid"]
    ).webhook


def _due_delivery(webhook, event_id="msg_1"):
    return f.WebhookDeliveryFactory(webhook=webhook, event_id=event_id, next_attempt_at=timezone.now())


def _wait(predicate, timeout=10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def _attempt_in_a_thread(delivery_id) -> None:
    try:
        outbox.webhook_delivery_attempt(delivery_id=delivery_id)
    finally:
        connection.close()  # the thread's own, or the test database cannot be dropped


@pytest.mark.parametrize(
    ("answer", "timeout", "status", "error"),
    [
        (Answer(200, b"ok", delay=0.5), 15.0, "succeeded", ""),
        (Answer(500, b"boom", delay=0.5), 15.0, "failed", "HTTP 500."),
        (Answer(200, b"late", delay=5), 1.0, "failed", "Timed out."),
    ],
    ids=["success", "failure", "timeout"],
)
def test_an_attempt_holds_a_slot_while_in_flight_and_gives_it_back(
    local_allowed, settings, answer, timeout, status, error
):
    settings.WEBHOOK_TIMEOUT_SECONDS = timeout
    with Receiver(answer) as receiver:
        webhook = _webhook(receiver.url())
        delivery = _due_delivery(webhook)
        attempt = threading.Thread(target=_attempt_in_a_thread, args=[delivery.pk])
        attempt.start()
        try:
            assert _wait(lambda: len(receiver.received) == 1)
            assert endpoint_slots_in_flight(webhook_id=webhook.pk) == 1
        finally:
            attempt.join(timeout=30)
    assert endpoint_slots_in_flight(webhook_id=webhook.pk) == 0
    delivery.refresh_from_db()
    assert (delivery.status, delivery.error) == (status, error)


def _webhooks_queue() -> list[dict]:
    """The messages waiting in the broker's ``webhooks`` queue (kombu's Redis layout)."""
    client = redis.Redis.from_url(django_settings.CELERY_BROKER_URL)
    messages = [json.loads(raw) for raw in client.lrange("webhooks", 0, -1)]
    return [{**message, "body": json.loads(base64.b64decode(message["body"]))} for message in messages]


def test_an_endpoint_at_its_cap_defers_the_delivery_unsent_uncounted_and_requeued(local_allowed, settings):
    settings.WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT = 2
    celery_app.control.purge()
    with Receiver() as receiver:
        webhook = _webhook(receiver.url())
        held = [endpoint_slot_take(webhook_id=webhook.pk, hold_seconds=60) for _ in range(2)]
        assert all(held) and endpoint_slot_take(webhook_id=webhook.pk, hold_seconds=60) is None
        delivery = _due_delivery(webhook)

        deferred_at = timezone.now()
        assert outbox.webhook_delivery_attempt(delivery_id=delivery.pk) is None
        assert receiver.received == []
        delivery.refresh_from_db()
        assert (delivery.status, delivery.attempt_number, delivery.error) == ("pending", 1, "")
        wait = (delivery.next_attempt_at - deferred_at).total_seconds()
        assert outbox.WEBHOOK_DEFER_FIRST_SECONDS * 0.85 <= wait <= outbox.WEBHOOK_DEFER_FIRST_SECONDS * 1.2
        assert WebhookDelivery.objects.filter(webhook=webhook).count() == 1  # no attempt row added
        (message,) = _webhooks_queue()
        assert message["headers"]["task"] == "settings_app.deliver_webhook"
        assert message["body"][:2] == [[str(delivery.pk)], {"deferrals": 1}]
        assert message["headers"]["eta"] is not None

        # Once a slot is free, the message's attempt goes out as attempt 1.
        held[0].release()
        WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
        outbox.webhook_delivery_attempt(delivery_id=delivery.pk, deferrals=1)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempt_number) == ("succeeded", 1)
    assert len(receiver.received) == 1
    celery_app.control.purge()


def test_a_deferral_leaves_a_delivery_another_worker_has_claimed_alone(local_allowed, settings):
    settings.WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT = 1
    celery_app.control.purge()
    webhook = _webhook("http://127.0.0.1:9/hook")
    endpoint_slot_take(webhook_id=webhook.pk, hold_seconds=60)
    delivery = _due_delivery(webhook)
    lease_end = timezone.now() + outbox.WEBHOOK_ATTEMPT_LEASE
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=lease_end)  # claimed meanwhile
    outbox._delivery_defer(delivery_id=delivery.pk, deferrals=0)
    delivery.refresh_from_db()
    assert delivery.next_attempt_at == lease_end
    assert _webhooks_queue() == []


def test_the_cap_is_per_endpoint(local_allowed, settings):
    settings.WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT = 1
    with Receiver() as receiver:
        slow, other = _webhook(receiver.url("/slow")), _webhook(receiver.url("/other"))
        assert endpoint_slot_take(webhook_id=slow.pk, hold_seconds=60) is not None
        delivery = _due_delivery(other)
        outbox.webhook_delivery_attempt(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == "succeeded"
    assert [request.path for request in receiver.received] == ["/other"]


def test_a_slot_whose_worker_died_frees_itself_when_its_hold_runs_out(settings):
    settings.WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT = 1
    webhook_id = "6b1f5d4e-0000-4000-8000-000000000001"
    assert endpoint_slot_take(webhook_id=webhook_id, hold_seconds=0.5) is not None  # never released
    assert endpoint_slot_take(webhook_id=webhook_id, hold_seconds=0.5) is None
    time.sleep(0.6)
    assert endpoint_slot_take(webhook_id=webhook_id, hold_seconds=0.5) is not None


def test_a_released_slot_of_a_hold_that_ran_out_does_not_free_its_successor(settings):
    settings.WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT = 1
    webhook_id = "6b1f5d4e-0000-4000-8000-000000000002"
    late = endpoint_slot_take(webhook_id=webhook_id, hold_seconds=0.3)
    time.sleep(0.4)
    successor = endpoint_slot_take(webhook_id=webhook_id, hold_seconds=60)
    assert successor is not None
    late.release()  # the late attempt finishes after all
    assert endpoint_slots_in_flight(webhook_id=webhook_id) == 1


def test_the_wait_of_a_deferred_delivery_doubles_up_to_the_maximum():
    waits = [outbox.webhook_defer_delay(deferrals=n) for n in range(8)]
    first, most = outbox.WEBHOOK_DEFER_FIRST_SECONDS, outbox.WEBHOOK_DEFER_MAX_SECONDS
    assert first * 0.9 <= waits[0] <= first * 1.1
    assert first * 2 * 0.9 <= waits[1] <= first * 2 * 1.1
    assert all(most * 0.9 <= wait <= most * 1.1 for wait in waits[5:])


def test_a_deferred_delivery_is_sent_by_the_sweeper_if_its_message_is_lost(local_allowed, settings):
    # The sweeper takes rows due for its grace period; a deferred row is due again after its wait.
    settings.WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT = 1
    celery_app.control.purge()
    webhook = _webhook("http://127.0.0.1:9/hook")
    held = endpoint_slot_take(webhook_id=webhook.pk, hold_seconds=60)
    delivery = _due_delivery(webhook)
    outbox.webhook_delivery_attempt(delivery_id=delivery.pk)
    celery_app.control.purge()  # the deferred message is lost
    held.release()
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now() - timedelta(minutes=1))
    assert outbox.webhook_deliveries_sweep() == 1
    celery_app.control.purge()
