"""Webhook delivery: Standard Webhooks signatures checked by the official library against a local
receiver, the retry schedule, disabling, the outbox, replay/test/recover, and the SSRF guard."""

import socket
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from rest_framework.test import APIClient
from standardwebhooks.webhooks import Webhook as StandardWebhook

from audit.models import SystemEvent
from celaest.celery import app as celery_app
from identity.models import User
from settings_app import webhook_targets
from settings_app.models import Webhook, WebhookDelivery
from settings_app.services import outbox, webhooks
from settings_app.services.outbox import emit_event
from settings_app.webhook_targets import WebhookTargetRefused, webhook_target_check
from tests import factories as f

from .receiver import Answer, Receiver

pytestmark = pytest.mark.django_db


@pytest.fixture
def eager_celery():
    """Tasks run in-process when enqueued (the enqueue itself is real: on commit)."""
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    yield
    celery_app.conf.task_always_eager = False
    celery_app.conf.task_eager_propagates = False


@pytest.fixture
def local_allowed(settings):
    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.WEBHOOK_REQUIRE_HTTPS = False
    return settings


def _hook(owner, url, events=("order.paid",)) -> tuple[Webhook, str]:
    created = webhooks.webhook_create(
        organization=owner.organization, user=owner, name="Receiver", url=url, events=list(events)
    )
    return created.webhook, created.secret


def _emit_committed(django_capture_on_commit_callbacks, organization, event_type="order.paid", payload=None):
    with django_capture_on_commit_callbacks(execute=True):
        with transaction.atomic():
            return emit_event(event_type, organization=organization, payload=payload or {"order": "ORD-1"})


def _make_due(delivery: WebhookDelivery) -> None:
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))


def _attempts(webhook) -> list[WebhookDelivery]:
    return list(WebhookDelivery.objects.filter(webhook=webhook).order_by("attempt_number"))


# --- signed delivery -------------------------------------------------------------------------


def test_an_event_is_delivered_on_commit_signed_per_standard_webhooks(
    owner, local_allowed, eager_celery, django_capture_on_commit_callbacks
):
    with Receiver() as receiver:
        webhook, secret = _hook(owner, receiver.url())
        event_id = _emit_committed(django_capture_on_commit_callbacks, owner.organization, payload={"order": "A-1"})

    assert len(receiver.received) == 1
    request = receiver.received[0]
    assert request.headers["webhook-id"] == event_id
    assert request.headers["webhook-signature"].startswith("v1,")
    verified = StandardWebhook(secret).verify(request.body, request.headers)
    assert verified["type"] == "order.paid" and verified["data"] == {"order": "A-1"}
    with pytest.raises(Exception):  # noqa: B017 - any verification error: the wrong key must fail
        StandardWebhook(webhooks.webhook_secret_generate()).verify(request.body, request.headers)

    [delivery] = _attempts(webhook)
    assert delivery.status == "succeeded" and delivery.response_status == 200 and delivery.response_body == "ok"
    assert delivery.duration_ms is not None and delivery.delivered_at is not None
    webhook.refresh_from_db()
    assert webhook.last_success_at is not None and webhook.failing_since is None


def test_during_a_rotation_both_secrets_sign(owner, local_allowed, eager_celery, django_capture_on_commit_callbacks):
    with Receiver() as receiver:
        webhook, old_secret = _hook(owner, receiver.url())
        rotated = webhooks.webhook_secret_rotate(webhook=webhook, grace_hours=24)
        _emit_committed(django_capture_on_commit_callbacks, owner.organization)
        webhooks.webhook_secret_rotate(webhook=webhook, grace_hours=0)  # grace ended at once
        newest = Webhook.objects.get(pk=webhook.pk)
        _emit_committed(django_capture_on_commit_callbacks, owner.organization)

    during, after = receiver.received
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    for secret in (old_secret, rotated.secret):
        StandardWebhook(secret).verify(during.body, during.headers)
    assert len(after.headers["webhook-signature"].split(" ")) == 1
    assert newest.previous_secret_encrypted == "" and newest.previous_secret_expires_at is None
    with pytest.raises(Exception):  # noqa: B017
        StandardWebhook(rotated.secret).verify(after.body, after.headers)


def test_an_event_of_a_rolled_back_transaction_is_never_sent(
    owner, local_allowed, eager_celery, django_capture_on_commit_callbacks
):
    with Receiver() as receiver:
        _hook(owner, receiver.url())
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            with pytest.raises(RuntimeError):
                with transaction.atomic():
                    emit_event("order.paid", organization=owner.organization, payload={"order": "X"})
                    raise RuntimeError("the change failed")
    assert callbacks == [] and receiver.received == []
    assert not WebhookDelivery.objects.exists()


# --- retries and disabling -------------------------------------------------------------------


def test_the_retry_schedule_with_jitter():
    expected = [5, 300, 1800, 7200, 18000, 36000, 36000]
    for attempt, base in enumerate(expected, start=1):
        delays = [outbox.webhook_retry_delay(attempt_number=attempt) for _ in range(50)]
        assert all(base * 0.9 <= delay <= base * 1.1 for delay in delays)
        assert len(set(delays)) > 1  # jittered
    assert outbox.webhook_retry_delay(attempt_number=8) is None
    assert outbox.webhook_retry_delay(attempt_number=1, retry_after_seconds=120) == 120
    assert outbox.webhook_retry_delay(attempt_number=1, retry_after_seconds=10**9) == 24 * 3600


def test_a_failed_attempt_is_a_row_and_the_next_one_is_scheduled(
    owner, local_allowed, eager_celery, django_capture_on_commit_callbacks
):
    answers = [Answer(500, b"boom"), Answer(429, b"slow down", {"Retry-After": "600"}), Answer(200)]
    with Receiver(*answers) as receiver:
        webhook, _ = _hook(owner, receiver.url())
        started = timezone.now()
        _emit_committed(django_capture_on_commit_callbacks, owner.organization)
        first, second = _attempts(webhook)
        assert (first.status, first.response_status, first.response_body) == ("failed", 500, "boom")
        assert first.error == "HTTP 500." and first.duration_ms is not None
        assert second.status == "pending" and second.attempt_number == 2
        assert timedelta(seconds=4) <= second.next_attempt_at - started <= timedelta(seconds=7)

        _make_due(second)
        outbox.webhook_delivery_attempt(delivery_id=second.pk)
        third = _attempts(webhook)[2]
        assert third.next_attempt_at - timezone.now() >= timedelta(seconds=590)  # Retry-After beats 5 min

        _make_due(third)
        outbox.webhook_delivery_attempt(delivery_id=third.pk)
    statuses = [(d.attempt_number, d.status) for d in _attempts(webhook)]
    assert statuses == [(1, "failed"), (2, "failed"), (3, "succeeded")]
    assert len({d.event_id for d in _attempts(webhook)}) == 1
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 1
    webhook.refresh_from_db()
    assert webhook.failing_since is None and webhook.last_success_at is not None


def test_the_eighth_failed_attempt_is_the_last(owner, local_allowed):
    with Receiver(Answer(503)) as receiver:
        webhook, _ = _hook(owner, receiver.url())
        last = f.WebhookDeliveryFactory(webhook=webhook, attempt_number=8, next_attempt_at=timezone.now())
        outbox.webhook_delivery_attempt(delivery_id=last.pk)
    assert [d.status for d in _attempts(webhook)] == ["failed"]


def test_410_gone_disables_the_endpoint(owner, local_allowed):
    with Receiver(Answer(410)) as receiver:
        webhook, _ = _hook(owner, receiver.url())
        delivery = f.WebhookDeliveryFactory(webhook=webhook, next_attempt_at=timezone.now())
        outbox.webhook_delivery_attempt(delivery_id=delivery.pk)
    webhook.refresh_from_db()
    assert webhook.status == "disabled" and "410" in webhook.disabled_reason
    assert [d.status for d in _attempts(webhook)] == ["failed"]  # no retry
    assert SystemEvent.objects.filter(event_type="webhook.disabled", organization=owner.organization).exists()


def test_five_days_of_failures_disable_the_endpoint_with_a_system_event(owner, local_allowed):
    with Receiver(Answer(500)) as receiver:
        webhook, _ = _hook(owner, receiver.url())
        Webhook.objects.filter(pk=webhook.pk).update(failing_since=timezone.now() - timedelta(days=5, minutes=1))
        delivery = f.WebhookDeliveryFactory(webhook=webhook, next_attempt_at=timezone.now())
        outbox.webhook_delivery_attempt(delivery_id=delivery.pk)
    webhook.refresh_from_db()
    assert webhook.status == "disabled"
    event = SystemEvent.objects.get(event_type="webhook.disabled")
    assert event.severity == "warning" and event.data["webhook_id"] == str(webhook.pk)


def test_four_days_of_failures_keep_retrying(owner, local_allowed):
    with Receiver(Answer(500)) as receiver:
        webhook, _ = _hook(owner, receiver.url())
        Webhook.objects.filter(pk=webhook.pk).update(failing_since=timezone.now() - timedelta(days=4))
        delivery = f.WebhookDeliveryFactory(webhook=webhook, next_attempt_at=timezone.now())
        outbox.webhook_delivery_attempt(delivery_id=delivery.pk)
    webhook.refresh_from_db()
    assert webhook.status == "active" and len(_attempts(webhook)) == 2


def test_a_paused_endpoint_gets_nothing(owner, local_allowed):
    with Receiver() as receiver:
        webhook, _ = _hook(owner, receiver.url())
        delivery = f.WebhookDeliveryFactory(webhook=webhook, next_attempt_at=timezone.now())
        webhooks.webhook_update(webhook=webhook, status="paused")
        outbox.webhook_delivery_attempt(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert receiver.received == [] and delivery.status == "failed" and "paused" in delivery.error


# --- at-least-once: claims, leases and the sweeper --------------------------------------------


def test_a_delivery_is_attempted_once_even_if_enqueued_twice(owner, local_allowed):
    with Receiver() as receiver:
        webhook, _ = _hook(owner, receiver.url())
        delivery = f.WebhookDeliveryFactory(webhook=webhook, next_attempt_at=timezone.now())
        outbox.webhook_delivery_attempt(delivery_id=delivery.pk)
        assert outbox.webhook_delivery_attempt(delivery_id=delivery.pk) is None
    assert len(receiver.received) == 1


def test_the_sweeper_sends_due_and_stuck_deliveries(
    owner, local_allowed, eager_celery, django_capture_on_commit_callbacks
):
    with Receiver() as receiver:
        webhook, _ = _hook(owner, receiver.url())
        past = timezone.now() - timedelta(minutes=1)
        lost = f.WebhookDeliveryFactory(webhook=webhook, event_id="msg_lost", next_attempt_at=past)
        # a worker claimed this one and died: its lease has run out
        stuck = f.WebhookDeliveryFactory(webhook=webhook, event_id="msg_stuck", next_attempt_at=past)
        in_flight = f.WebhookDeliveryFactory(
            webhook=webhook, event_id="msg_busy", next_attempt_at=timezone.now() + outbox.WEBHOOK_ATTEMPT_LEASE
        )
        with django_capture_on_commit_callbacks(execute=True):
            assert outbox.webhook_deliveries_sweep() == 2
    assert {r.headers["webhook-id"] for r in receiver.received} == {"msg_lost", "msg_stuck"}
    for delivery, status in ((lost, "succeeded"), (stuck, "succeeded"), (in_flight, "pending")):
        delivery.refresh_from_db()
        assert delivery.status == status


def _switch_broker(url: str) -> None:
    celery_app.conf.broker_url = url
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


def test_an_unreachable_broker_leaves_the_delivery_for_the_sweeper(
    owner, local_allowed, settings, django_capture_on_commit_callbacks
):
    webhook, _ = _hook(owner, "http://127.0.0.1:9/hook")
    broker = celery_app.conf.broker_url
    _switch_broker("redis://127.0.0.1:1/0")  # nothing listens there
    try:
        event_id = _emit_committed(django_capture_on_commit_callbacks, owner.organization)  # does not raise
    finally:
        _switch_broker(broker)
    delivery = WebhookDelivery.objects.get(event_id=event_id)
    assert delivery.status == "pending" and delivery.webhook == webhook


# --- replay, test event, recover ---------------------------------------------------------------


def _api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_replay_test_event_and_recover_through_the_api(
    owner, local_allowed, eager_celery, django_capture_on_commit_callbacks
):
    with Receiver() as receiver:
        webhook, secret = _hook(owner, receiver.url())
        client = _api(owner)
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(f"/api/v1/webhooks/{webhook.pk}/test")
        assert response.status_code == 202, response.content
        assert response.json()["event_type"] == "webhook.test"
        assert StandardWebhook(secret).verify(receiver.received[-1].body, receiver.received[-1].headers)["type"] == (
            "webhook.test"
        )

        failed = f.WebhookDeliveryFactory(webhook=webhook, event_id="msg_failed", status="failed", attempt_number=3)
        f.WebhookDeliveryFactory(webhook=webhook, event_id="msg_ok", status="succeeded")
        f.WebhookDeliveryFactory(webhook=webhook, event_id="msg_ok", status="failed", attempt_number=2)
        f.WebhookDeliveryFactory(
            webhook=webhook, event_id="msg_old", status="failed", created_at=timezone.now() - timedelta(days=9)
        )
        since = (timezone.now() - timedelta(days=1)).isoformat()
        with django_capture_on_commit_callbacks(execute=True):
            recovered = client.post(f"/api/v1/webhooks/{webhook.pk}/recover", {"since": since}, format="json")
        assert recovered.status_code == 202 and recovered.json() == {"queued": 1}
        assert receiver.received[-1].headers["webhook-id"] == "msg_failed"
        assert WebhookDelivery.objects.get(event_id="msg_failed", attempt_number=4).status == "succeeded"

        with django_capture_on_commit_callbacks(execute=True):
            replayed = client.post(f"/api/v1/webhook-deliveries/{failed.pk}/replay")
        assert replayed.status_code == 202 and replayed.json()["attempt_number"] == 5
    assert WebhookDelivery.objects.filter(event_id="msg_failed").count() == 3


def test_replay_is_refused_for_a_disabled_endpoint_and_by_members(owner):
    webhook = f.WebhookFactory(organization=owner.organization, user=owner, status="disabled")
    delivery = f.WebhookDeliveryFactory(webhook=webhook, status="failed")
    response = _api(owner).post(f"/api/v1/webhook-deliveries/{delivery.pk}/replay")
    assert response.status_code == 409 and response.json()["error"]["code"] == "webhook_not_active"
    member = f.UserFactory(organization=owner.organization, role=User.Role.MEMBER)
    assert _api(member).post(f"/api/v1/webhooks/{webhook.pk}/test").status_code == 403
    stranger = f.UserFactory(role=User.Role.OWNER)
    assert _api(stranger).post(f"/api/v1/webhook-deliveries/{delivery.pk}/replay").status_code == 404
    assert (
        _api(stranger).post(f"/api/v1/webhooks/{webhook.pk}/recover", {"since": "2026-01-01T00:00:00Z"}).status_code
        == 404
    )


def test_rotate_secret_through_the_api(owner):
    webhook, old_secret = _hook(owner, "https://hooks.example.com/in")
    response = _api(owner).post(f"/api/v1/webhooks/{webhook.pk}/rotate-secret", {"grace_hours": 2}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["secret"].startswith("whsec_") and body["secret"] != old_secret
    assert body["previous_secret_expires_at"] is not None
    assert _api(owner).get(f"/api/v1/webhooks/{webhook.pk}").content.decode().count("whsec_") == 0
    bad = _api(owner).post(f"/api/v1/webhooks/{webhook.pk}/rotate-secret", {"grace_hours": 1000}, format="json")
    assert bad.status_code == 400


# --- SSRF ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://127.0.0.1:8080/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://100.64.0.1/hook",
        "http://0.0.0.0/hook",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[fd00:ec2::254]/hook",
        "http://localhost/hook",  # a host name resolving to a loopback address
        "http://user:pw@hooks.example.com/hook",
    ],
)
def test_internal_targets_are_refused_on_save(owner, settings, url):
    settings.WEBHOOK_ALLOWED_HOSTS = []
    with pytest.raises(WebhookTargetRefused):
        webhook_target_check(url, require_resolution=False)
    response = _api(owner).post("/api/v1/webhooks", {"name": "x", "url": url, "events": ["*"]}, format="json")
    assert response.status_code == 400 and "url" in response.json()["error"]["details"]


def test_https_is_required_in_production(settings):
    settings.WEBHOOK_REQUIRE_HTTPS = True
    with pytest.raises(WebhookTargetRefused):
        webhook_target_check("http://93.184.215.14/hook", require_resolution=False)
    assert webhook_target_check("https://93.184.215.14/hook", require_resolution=True).address is not None


def test_the_allowlist_admits_listed_hosts_and_networks(settings):
    settings.WEBHOOK_ALLOWED_HOSTS = ["10.0.0.0/8", "localhost"]
    assert str(webhook_target_check("http://10.9.8.7/", require_resolution=True).address) == "10.9.8.7"
    assert webhook_target_check("http://localhost:8000/", require_resolution=True).host == "localhost"
    with pytest.raises(WebhookTargetRefused):
        webhook_target_check("http://192.168.1.1/", require_resolution=True)


def test_the_guard_runs_again_at_delivery(owner, settings):
    """An endpoint saved when it was allowed (or whose DNS changed since) is refused when sent."""
    with Receiver() as receiver:
        settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
        webhook, _ = _hook(owner, receiver.url())
        settings.WEBHOOK_ALLOWED_HOSTS = []
        delivery = f.WebhookDeliveryFactory(webhook=webhook, next_attempt_at=timezone.now())
        outbox.webhook_delivery_attempt(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert receiver.received == []
    assert delivery.status == "failed" and delivery.error.startswith("Refused") and delivery.response_status is None


def test_a_redirect_to_an_internal_address_is_not_followed(owner, local_allowed):
    with Receiver() as internal:
        redirect = Answer(307, b"", {"Location": internal.url(host="localhost")})
        with Receiver(redirect) as receiver:
            webhook, _ = _hook(owner, receiver.url())
            delivery = f.WebhookDeliveryFactory(webhook=webhook, next_attempt_at=timezone.now())
            outbox.webhook_delivery_attempt(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert len(receiver.received) == 1 and internal.received == []
    assert delivery.status == "failed" and delivery.response_status == 307 and "not followed" in delivery.error


# IPv6 forms that carry an IPv4 address: Python's is_global says True for most of them, but the
# network delivers them to the IPv4 address inside.
EMBEDDED_IPV4_URLS = [
    "http://[64:ff9b::a9fe:a9fe]/latest/meta-data",  # NAT64 of 169.254.169.254
    "http://[64:ff9b::7f00:1]/hook",  # NAT64 of 127.0.0.1
    "http://[64:ff9b:1::a00:1]/hook",  # local-use NAT64 prefix (10.0.0.1)
    "http://[2002:a9fe:a9fe::]/hook",  # 6to4 of 169.254.169.254
    "http://[2002:7f00:1::1]/hook",  # 6to4 of 127.0.0.1
    "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/hook",  # Teredo
    "http://[::169.254.169.254]/hook",  # IPv4-compatible
    "http://[::127.0.0.1]/hook",
    "http://[::ffff:0:7f00:1]/hook",  # IPv4-translated (SIIT)
    "http://[::ffff:a9fe:a9fe]/hook",  # IPv4-mapped, written in hex
    "http://[2606:4700::5efe:a9fe:a9fe]/hook",  # ISATAP interface id
]

# Spellings of an address that do not look like one, and URL tricks around the host.
DISGUISED_HOST_URLS = [
    "http://2130706433/hook",  # 127.0.0.1 as one decimal number
    "http://0x7f000001/hook",
    "http://0x7f.1/hook",
    "http://0177.0.0.1/hook",  # octal
    "http://127.1/hook",
    "http://0/hook",
    "http://127.0.0.1./hook",  # trailing dot
    "http://localhost./hook",
    "http://[fe80::1%25eth0]/hook",  # zone id
    "http://[2606:4700::1%25eth0]/hook",
    "http://good.example.com@127.0.0.1/hook",  # userinfo: the host is 127.0.0.1
    "http://@127.0.0.1/hook",
    "http://127.0.0.1\\@good.example.com/hook",  # a backslash: browsers read the host as 127.0.0.1
    "http://127.0.0.1 /hook",
    "http://\uff11\uff12\uff17\u30020\u30020\u30021/hook",  # full-width digits, ideographic dots
    "http://0x7f\uff0e1/hook",
]


@pytest.mark.parametrize("url", EMBEDDED_IPV4_URLS + DISGUISED_HOST_URLS)
def test_embedded_and_disguised_internal_targets_are_refused_on_create_and_update(owner, settings, url):
    settings.WEBHOOK_ALLOWED_HOSTS = []
    settings.WEBHOOK_REQUIRE_HTTPS = False
    with pytest.raises(WebhookTargetRefused):
        webhook_target_check(url, require_resolution=False)
    with pytest.raises(WebhookTargetRefused):
        webhook_target_check(url, require_resolution=True)
    client = _api(owner)
    created = client.post("/api/v1/webhooks", {"name": "x", "url": url, "events": ["*"]}, format="json")
    # Some spellings already fail the serializer's URL syntax check ("invalid"); all are refused.
    assert created.status_code == 400 and "url" in created.json()["error"]["details"]
    webhook = f.WebhookFactory(organization=owner.organization, url="https://93.184.215.14/hook")
    updated = client.patch(f"/api/v1/webhooks/{webhook.pk}", {"url": url}, format="json")
    assert updated.status_code == 400 and "url" in updated.json()["error"]["details"]
    webhook.refresh_from_db()
    assert webhook.url == "https://93.184.215.14/hook"


@pytest.mark.parametrize(
    "url",
    [
        "https://[64:ff9b::5db8:d70e]/hook",  # NAT64 of a public address
        "https://[2002:5db8:d70e::1]/hook",  # 6to4 of a public address
        "https://[2606:4700:4700::1111]/hook",
        "https://93.184.215.14./hook",
    ],
)
def test_public_addresses_in_those_forms_are_accepted(settings, url):
    settings.WEBHOOK_ALLOWED_HOSTS = []
    assert webhook_target_check(url, require_resolution=True).address is not None


@pytest.mark.parametrize("address", ["64:ff9b::a9fe:a9fe", "2002:a00:1::", "::ffff:10.0.0.1", "169.254.169.254"])
def test_the_guard_runs_again_at_delivery_on_a_dns_answer_that_changed(owner, settings, monkeypatch, address):
    """DNS rebinding: the name resolved to a public address when saved and to an internal one (in
    any of its spellings) when sent. Nothing is sent, and the delivery says why."""
    settings.WEBHOOK_ALLOWED_HOSTS = []
    settings.WEBHOOK_REQUIRE_HTTPS = False
    answers = {"now": "93.184.215.14"}

    def getaddrinfo(host, port, *args, **kwargs):
        assert host == "hooks.rebind.example"
        family = socket.AF_INET6 if ":" in answers["now"] else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (answers["now"], port))]

    monkeypatch.setattr(webhook_targets.socket, "getaddrinfo", getaddrinfo)
    webhook, _ = _hook(owner, "http://hooks.rebind.example/hook")
    answers["now"] = address
    delivery = f.WebhookDeliveryFactory(webhook=webhook, next_attempt_at=timezone.now())
    outbox.webhook_delivery_attempt(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == "failed" and delivery.error.startswith("Refused") and delivery.response_status is None


def test_a_name_with_one_internal_answer_among_public_ones_is_refused(settings, monkeypatch):
    settings.WEBHOOK_ALLOWED_HOSTS = []

    def getaddrinfo(host, port, *args, **kwargs):
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", port)),
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("64:ff9b::7f00:1", port, 0, 0)),
        ]

    monkeypatch.setattr(webhook_targets.socket, "getaddrinfo", getaddrinfo)
    with pytest.raises(WebhookTargetRefused):
        webhook_target_check("https://hooks.mixed.example/hook", require_resolution=False)


def test_a_refused_local_url_says_how_to_allow_it_without_revealing_the_address(owner, settings, monkeypatch):
    settings.WEBHOOK_ALLOWED_HOSTS = []
    settings.WEBHOOK_REQUIRE_HTTPS = False
    monkeypatch.setattr(
        webhook_targets.socket,
        "getaddrinfo",
        lambda host, port, *a, **k: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.20.30.40", port))],
    )
    response = _api(owner).post(
        "/api/v1/webhooks", {"name": "x", "url": "http://billing.internal/hook", "events": ["*"]}, format="json"
    )
    error = response.json()["error"]
    assert response.status_code == 400 and error["code"] == "webhook_url_refused"
    assert "WEBHOOK_ALLOWED_HOSTS" in error["details"]["hint"]
    assert "10.20.30.40" not in str(response.json())  # the platform's internal DNS is not mapped for callers
    literal = _api(owner).post(
        "/api/v1/webhooks", {"name": "x", "url": "http://127.0.0.1:9000/", "events": ["*"]}, format="json"
    )
    assert "WEBHOOK_ALLOWED_HOSTS" in literal.json()["error"]["details"]["hint"]


def test_an_allowlisted_local_receiver_still_gets_deliveries(owner, local_allowed):
    """The refusals above do not reach the allowlist: 127.0.0.1 listed is delivered to."""
    with Receiver() as receiver:
        webhook, _ = _hook(owner, receiver.url())
        delivery = f.WebhookDeliveryFactory(webhook=webhook, next_attempt_at=timezone.now())
        outbox.webhook_delivery_attempt(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == "succeeded" and len(receiver.received) == 1


def test_an_international_host_is_sent_its_ascii_name_in_the_host_header(settings, monkeypatch):
    """The guard judges the IDNA form of a non-ASCII host; the request names the same host, as
    the endpoint's virtual host and certificate know it (the raw name made httpx fail outside the
    errors a delivery turns into a result)."""
    from settings_app import webhook_sender

    settings.WEBHOOK_ALLOWED_HOSTS = ["xn--bcher-kva.example"]
    settings.WEBHOOK_REQUIRE_HTTPS = False

    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):  # the socket module's own: httpx resolves too
        if host == "xn--bcher-kva.example":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(webhook_targets.socket, "getaddrinfo", getaddrinfo)
    with Receiver() as receiver:
        result = webhook_sender.send(url=receiver.url(host="bücher.example"), headers={}, body=b"{}")
    assert result.status_code == 200, result.error
    assert receiver.received[0].headers["host"] == f"xn--bcher-kva.example:{receiver.port}"
