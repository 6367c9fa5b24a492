"""The Stripe gateway against a local server speaking Stripe's API (the real SDK makes the
calls), and the signed webhook."""

import time
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from audit.models import SystemEvent
from billing.models import Invoice, Order
from billing.services.payments import order_cancel, order_refund
from identity.models import User
from marketplace.models import CustomerAsset
from tests import factories as f
from tests.clients import client_as

from .conftest import STRIPE_TEST_WEBHOOK_SECRET as WEBHOOK_SECRET
from .stripe_server import signed_event

pytestmark = pytest.mark.django_db

WEBHOOK_URL = "/api/v1/billing/stripe/webhook"


@pytest.fixture
def owner():
    return f.UserFactory(role=User.Role.OWNER, organization=f.OrganizationFactory(settings={"country": "US"}))


@pytest.fixture
def product():
    f.PaymentGatewayFactory(code="stripe", name="Card", provider="stripe", fee_percentage=Decimal("2.90"))
    return f.ProductFactory(price=Decimal("65.30"))


def _checkout(owner, product, key="k1"):
    body = {"items": [{"product": str(product.pk)}], "gateway": "stripe"}
    return client_as(owner).post("/api/v1/orders", body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def _deliver(event_type, obj, *, secret=WEBHOOK_SECRET, timestamp=None, header=None):
    payload, signature = signed_event(event_type, obj, secret=secret, timestamp=timestamp)
    return APIClient().post(
        WEBHOOK_URL, payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=header or signature
    )


def test_checkout_creates_one_payment_intent(stripe_api, owner, product):
    response = _checkout(owner, product)
    assert response.status_code == 201, response.content
    body = response.json()
    intent = stripe_api.intents[body["payment"]["reference"]]
    assert (intent["amount"], intent["currency"]) == (6530, "usd")
    assert intent["metadata"] == {"order_id": body["id"], "order_number": body["order_number"]}
    assert body["payment"]["client_secret"] == intent["client_secret"]
    assert Order.objects.get(pk=body["id"]).gateway_reference == intent["id"]

    again = _checkout(owner, product).json()  # the client retries: same order, same intent
    assert again["payment"]["reference"] == intent["id"] and len(stripe_api.intents) == 1


def test_stripe_outage_is_a_502_and_the_retry_resumes(stripe_api, owner, product):
    stripe_api.fail_next = 3  # the first call and the SDK's two retries
    response = _checkout(owner, product)
    assert response.status_code == 502 and response.json()["error"]["code"] == "gateway_error"
    order = Order.objects.get()
    assert order.status == "pending" and order.gateway_reference == ""
    retried = _checkout(owner, product)
    assert retried.status_code == 200 and retried.json()["payment"]["client_secret"]
    assert len(stripe_api.intents) == 1


def test_signed_success_webhook_pays_the_order_once(stripe_api, owner, product):
    body = _checkout(owner, product).json()
    intent = stripe_api.succeed(body["payment"]["reference"])
    for _ in range(3):  # Stripe delivers at least once
        response = _deliver("payment_intent.succeeded", intent)
        assert response.status_code == 200 and response.json()["outcome"] == "paid"
    order = Order.objects.get(pk=body["id"])
    assert order.status == "paid" and order.gateway_fee == Decimal("1.89")
    assert Invoice.objects.filter(order=order).count() == 1
    assert CustomerAsset.objects.filter(order=order).count() == 1


@pytest.mark.parametrize(
    "tamper",
    [
        {"secret": "whsec_someone_else"},
        {"timestamp": int(time.time()) - 3600},
        {"header": "t=1,v1=deadbeef"},
        {"header": "garbage"},
    ],
)
def test_bad_signatures_are_refused(stripe_api, owner, product, tamper):
    body = _checkout(owner, product).json()
    intent = stripe_api.succeed(body["payment"]["reference"])
    response = _deliver("payment_intent.succeeded", intent, **tamper)
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_signature"
    assert Order.objects.get(pk=body["id"]).status == "pending"


def test_missing_signature_or_tampered_body_is_refused(stripe_api, owner, product):
    body = _checkout(owner, product).json()
    intent = stripe_api.succeed(body["payment"]["reference"])
    payload, signature = signed_event("payment_intent.succeeded", intent, secret=WEBHOOK_SECRET)
    client = APIClient()
    assert client.post(WEBHOOK_URL, payload, content_type="application/json").status_code == 400
    forged = payload.replace(b'"amount": 6530', b'"amount": 1')
    assert forged != payload
    response = client.post(WEBHOOK_URL, forged, content_type="application/json", HTTP_STRIPE_SIGNATURE=signature)
    assert response.status_code == 400
    assert Order.objects.get(pk=body["id"]).status == "pending"


def test_a_signed_event_is_still_checked_against_stripe(stripe_api, owner, product):
    body = _checkout(owner, product).json()
    reference = body["payment"]["reference"]
    not_yet = dict(stripe_api.intents[reference], status="succeeded", amount_received=6530)  # Stripe says otherwise
    assert _deliver("payment_intent.succeeded", not_yet).json()["outcome"].startswith("refused")
    stripe_api.succeed(reference, amount=100)  # a partial capture
    assert _deliver("payment_intent.succeeded", not_yet).json()["outcome"].startswith("refused")
    assert Order.objects.get(pk=body["id"]).status == "pending"
    assert SystemEvent.objects.filter(event_type="billing.payment_mismatch").count() == 2


def test_refund_goes_through_stripe(stripe_api, owner, product):
    body = _checkout(owner, product).json()
    _deliver("payment_intent.succeeded", stripe_api.succeed(body["payment"]["reference"]))
    order = Order.objects.get(pk=body["id"])
    order_refund(order=order, reason="duplicate purchase", source="admin")
    [refund] = stripe_api.refunds.values()
    assert refund["payment_intent"] == order.gateway_reference and refund["amount"] == 6530
    order.refresh_from_db()
    assert order.status == "refunded" and Invoice.objects.get(order=order).status == "credited"


def test_refund_made_in_stripe_is_mirrored(stripe_api, owner, product):
    body = _checkout(owner, product).json()
    intent = stripe_api.succeed(body["payment"]["reference"])
    _deliver("payment_intent.succeeded", intent)
    charge = {"id": "ch_1", "object": "charge", "payment_intent": intent["id"], "refunded": True, "metadata": {}}
    assert _deliver("charge.refunded", charge).json()["outcome"] == "refunded"
    assert Order.objects.get(pk=body["id"]).status == "refunded" and not stripe_api.refunds


def test_unknown_events_and_orders_are_acknowledged(stripe_api):
    assert _deliver("customer.created", {"id": "cus_1", "object": "customer"}).json()["outcome"] == "ignored"
    stranger = {"id": "pi_unknown", "object": "payment_intent", "metadata": {"order_id": "not-a-uuid"}}
    assert _deliver("payment_intent.succeeded", stranger).json()["outcome"] == "ignored: unknown order"


def test_payment_for_a_cancelled_order_raises_an_alert(stripe_api, owner, product):
    body = _checkout(owner, product).json()
    order_cancel(order=Order.objects.get(pk=body["id"]), reason="too slow")
    intent = stripe_api.succeed(body["payment"]["reference"])
    assert _deliver("payment_intent.succeeded", intent).json()["outcome"] == "refused: order not payable"
    assert SystemEvent.objects.filter(event_type="billing.payment_for_closed_order", severity="error").exists()
    assert Order.objects.get(pk=body["id"]).status == "cancelled"


def test_failed_payment_is_recorded_and_the_order_stays_payable(stripe_api, owner, product):
    from audit.models import AuditLog

    body = _checkout(owner, product).json()
    intent = dict(stripe_api.intents[body["payment"]["reference"]], last_payment_error={"code": "card_declined"})
    assert _deliver("payment_intent.payment_failed", intent).json()["outcome"] == "recorded"
    assert AuditLog.objects.filter(resource_id=body["id"], changes__payment_failed=[None, "card_declined"]).exists()
    assert Order.objects.get(pk=body["id"]).status == "pending"
