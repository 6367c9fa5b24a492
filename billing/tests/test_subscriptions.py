"""Subscribing: from the customer API (checkout) and the admin, monthly or yearly, with a trial
that converts to paid; the license is the subscription's entitlement. Stripe is a local server
speaking its API (the real SDK makes the calls)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D  # noqa: N817 - amounts read as D("49.00")

import pytest
import time_machine

from audit.models import AuditLog
from billing.models import Invoice, InvoiceLine, Subscription
from billing.services.renewals import subscriptions_renew_due
from billing.services.subscription_invoices import subscription_invoice_paid
from billing.services.subscriptions import subscription_create
from identity.models import User
from licensing.models import License
from settings_app.models import WebhookDelivery
from tests import factories as f
from tests.clients import client_as

pytestmark = pytest.mark.django_db

START = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


@pytest.fixture
def organization():
    return f.OrganizationFactory(settings={"country": "ES"}, email="billing@acme.test")


@pytest.fixture
def owner(organization):
    return f.UserFactory(role=User.Role.OWNER, organization=organization)


@pytest.fixture
def plan():
    plan = f.SubscriptionPlanFactory(code="pro", name="Pro", price_monthly=D("49.00"), price_yearly=D("490.00"))
    f.TaxRateFactory(code="es-vat", rate=D("21.000"), country_code="ES")
    return plan


@pytest.fixture
def gateways():
    f.PaymentGatewayFactory(code="manual", provider="manual")
    f.PaymentGatewayFactory(code="stripe", name="Card", provider="stripe")


@pytest.fixture
def card(owner):
    return f.PaymentMethodFactory(
        user=owner, is_default=True, gateway_token="pm_card_visa", gateway_customer="cus_acme"
    )


def _subscribe(user, **body):
    body = {"plan": "pro", "interval": "month", "gateway": "manual", **body}
    return client_as(user).post("/api/v1/subscriptions", body, format="json")


@time_machine.travel(START, tick=False)
def test_a_bank_transfer_subscription_waits_for_the_money_then_the_license_runs_to_the_period_end(
    owner, plan, gateways
):
    response = _subscribe(owner)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "incomplete" and body["interval"] == "month"
    assert body["current_period_end"].startswith("2026-04-10T09:00")
    invoice = body["latest_invoice"]
    assert (invoice["subtotal"], invoice["tax_total"], invoice["total"]) == ("49.0000", "10.2900", "59.2900")
    assert invoice["due_at"].startswith("2026-03-24")  # 14 days to pay a transfer
    assert [line["kind"] for line in invoice["lines"]] == ["plan"]
    license = License.objects.get(pk=body["license"])
    assert license.expires_at <= START  # nothing usable before the money arrives

    subscription_invoice_paid(invoice=Invoice.objects.get(pk=invoice["id"]), reference="transfer")
    license.refresh_from_db()
    assert license.status == "active" and license.expires_at == datetime(2026, 4, 10, 9, 0, tzinfo=UTC)
    assert Subscription.objects.get(pk=body["id"]).status == "active"
    assert AuditLog.objects.filter(resource_id=body["id"], action="create", source="api").exists()


@time_machine.travel(START, tick=False)
def test_a_card_subscription_is_charged_off_session_at_once(owner, plan, gateways, card, stripe_api):
    response = _subscribe(owner, gateway="stripe", interval="year")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "active" and body["latest_invoice"]["status"] == "paid"
    [intent] = stripe_api.intents.values()
    assert (intent["amount"], intent["currency"], intent["status"]) == (59290, "usd", "succeeded")
    assert (intent["payment_method"], intent["customer"]) == ("pm_card_visa", "cus_acme")
    assert intent["metadata"]["invoice_id"] == body["latest_invoice"]["id"]
    license = License.objects.get(pk=body["license"])
    assert license.expires_at == datetime(2027, 3, 10, 9, 0, tzinfo=UTC)


@pytest.mark.usefixtures("eager_tasks")  # the renewal queues its card charge
def test_a_trial_converts_to_paid_at_its_end(owner, plan, gateways, card, stripe_api):
    f.PlanBillingTermsFactory(plan=plan, trial_days=14)
    with time_machine.travel(START, tick=False) as clock:
        body = _subscribe(owner, gateway="stripe").json()
        assert body["status"] == "trialing" and body["latest_invoice"] is None
        license = License.objects.get(pk=body["license"])
        assert license.status == "trial" and license.expires_at == START + timedelta(days=14)
        assert subscriptions_renew_due() == 0  # nothing due during the trial

        clock.move_to(START + timedelta(days=14, minutes=5))
        assert subscriptions_renew_due() == 1
        subscription = Subscription.objects.get(pk=body["id"])
        assert subscription.status == "active"
        assert subscription.current_period_start == START + timedelta(days=14)  # counted from the trial's end
        assert subscription.current_period_end == datetime(2026, 4, 24, 9, 0, tzinfo=UTC)
        license.refresh_from_db()
        assert license.status == "active" and license.expires_at == subscription.current_period_end
        [invoice] = Invoice.objects.filter(subscription=subscription)
        assert invoice.status == "paid" and invoice.billing_reason == "subscription_cycle"
        assert subscriptions_renew_due() == 0


@time_machine.travel(START, tick=False)
def test_a_trial_can_be_declined(owner, plan, gateways):
    f.PlanBillingTermsFactory(plan=plan, trial_days=14)
    body = _subscribe(owner, trial=False).json()
    assert body["status"] == "incomplete" and body["latest_invoice"]["total"] == "59.2900"


@time_machine.travel(START, tick=False)
def test_subscription_events_are_emitted(owner, plan, gateways, card, stripe_api):
    f.WebhookFactory(organization=owner.organization, user=owner, events=["*"])
    _subscribe(owner, gateway="stripe")
    kinds = set(WebhookDelivery.objects.values_list("event_type", flat=True))
    assert {"subscription.created", "invoice.issued", "invoice.paid", "license.created"} <= kinds


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"plan": "nope"}, "plan"),
        ({"interval": "week"}, "interval"),
        ({"gateway": "unknown"}, "gateway"),
        ({"payment_method": "not-a-uuid"}, "payment_method"),
        ({"trial": "maybe"}, "trial"),
        ({"coupon_code": "x" * 65}, "coupon_code"),
    ],
)
def test_bad_input_is_a_400_in_the_error_shape(owner, plan, gateways, body, field):
    response = _subscribe(owner, **body)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid" and field in error["details"]
    assert not Subscription.objects.exists() and not License.objects.exists()


def test_a_card_gateway_needs_a_saved_method(owner, plan, gateways):
    response = _subscribe(owner, gateway="stripe")
    assert response.status_code == 400 and response.json()["error"]["code"] == "payment_method_required"
    assert not License.objects.exists()


def test_another_organizations_payment_method_cannot_be_charged(owner, plan, gateways):
    stranger = f.PaymentMethodFactory(gateway_token="pm_theirs", is_default=True)
    response = _subscribe(owner, gateway="stripe", payment_method=str(stranger.pk))
    assert response.status_code == 400 and "payment_method" in response.json()["error"]["details"]
    assert not Subscription.objects.exists()


def test_an_unknown_coupon_is_refused_and_nothing_is_written(owner, plan, gateways):
    response = _subscribe(owner, coupon_code="NOPE")
    assert response.status_code == 400 and response.json()["error"]["code"] == "coupon_invalid"
    assert not Subscription.objects.exists() and not License.objects.exists()


def test_an_organization_has_one_live_subscription(owner, plan, gateways):
    assert _subscribe(owner).status_code == 201
    again = _subscribe(owner, interval="year")
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_subscribed"
    assert Subscription.objects.count() == 1


@pytest.mark.parametrize("role", [User.Role.MEMBER, User.Role.VIEWER])
def test_only_owners_and_admins_subscribe(organization, plan, gateways, role):
    response = _subscribe(f.UserFactory(organization=organization, role=role))
    assert response.status_code == 403
    assert not Subscription.objects.exists()


def test_members_read_their_organizations_subscription_only(owner, plan, gateways):
    mine = _subscribe(owner).json()
    other_owner = f.UserFactory(role=User.Role.OWNER)
    theirs = _subscribe(other_owner).json()
    member = f.UserFactory(organization=owner.organization, role=User.Role.MEMBER)
    listed = client_as(member).get("/api/v1/subscriptions").json()["results"]
    assert [row["id"] for row in listed] == [mine["id"]]
    assert client_as(member).get(f"/api/v1/subscriptions/{theirs['id']}").status_code == 404
    invoices = client_as(member).get("/api/v1/invoices").json()["results"]
    assert [row["subscription"] for row in invoices] == [mine["id"]]


@time_machine.travel(START, tick=False)
def test_staff_subscribe_an_organization_from_the_admin(client, owner, plan, gateways):
    client.force_login(f.StaffUserFactory())
    response = client.post(
        "/admin/billing/subscription/add/",
        {
            "organization": owner.organization.pk,
            "user": owner.pk,
            "plan": plan.pk,
            "interval": "year",
            "gateway": f.PaymentGatewayFactory(code="manual").pk,
            "payment_method": "",
            "coupon_code": "",
        },
    )
    assert response.status_code == 302, response.content.decode()[-2000:]
    subscription = Subscription.objects.get()
    assert (subscription.interval, subscription.status, subscription.organization) == (
        "year",
        "incomplete",
        owner.organization,
    )
    invoice = Invoice.objects.get(subscription=subscription)
    assert InvoiceLine.objects.get(invoice=invoice).amount == D("490.0000")
    assert AuditLog.objects.filter(resource_id=str(subscription.pk), action="create", source="admin").exists()
    assert client.get(f"/admin/billing/subscription/{subscription.pk}/change/").status_code == 200
    assert client.get("/admin/billing/subscription/").status_code == 200


def test_subscribing_twice_from_the_service_is_refused(owner, plan, gateways):
    subscription_create(organization=owner.organization, user=owner, plan=plan, interval="month", gateway_code="manual")
    with pytest.raises(Exception) as excinfo:
        subscription_create(
            organization=owner.organization, user=owner, plan=plan, interval="month", gateway_code="manual"
        )
    assert getattr(excinfo.value, "code", "") == "already_subscribed"


def test_mrr_and_churn_are_shown_to_staff(client, plan, gateways):
    from billing.selectors import subscription_metrics

    def subscribed(interval, status, **fields):
        subscription = f.SubscriptionFactory(plan=plan, license__plan=plan, interval=interval, **fields)
        Subscription.objects.filter(pk=subscription.pk).update(status=status)

    subscribed("month", "active")
    subscribed("year", "active")  # 490 / 12 = 40.83
    subscribed("month", "past_due")
    subscribed("month", "trialing")  # not paying yet
    now = datetime(2026, 3, 10, tzinfo=UTC)
    subscribed("month", "cancelled", cancelled_at=datetime(2026, 3, 1, tzinfo=UTC))
    subscribed("month", "cancelled", cancelled_at=datetime(2025, 12, 1, tzinfo=UTC))  # outside the window
    metrics = subscription_metrics(now=now)
    assert metrics["mrr"] == {"USD": D("138.83")}  # 49 + 40.8333 + 49
    assert metrics["churned"] == 1 and metrics["churn_percent"] == D("25.0")  # 1 of 3 paying + 1
    assert metrics["by_status"] == {"active": 2, "cancelled": 2, "past_due": 1, "trialing": 1}
    client.force_login(f.StaffUserFactory())
    page = client.get("/admin/billing/subscription/").content.decode()
    assert "MRR 138.83 USD" in page


@time_machine.travel(START, tick=False)
def test_a_subscription_invoice_reads_the_same_in_html_and_pdf(owner, plan, gateways):
    f.CouponFactory(code="TENOFF", discount_value=D("10"), duration="forever")
    body = _subscribe(owner, coupon_code="TENOFF").json()
    invoice_id = body["latest_invoice"]["id"]
    html = client_as(owner).get(f"/api/v1/invoices/{invoice_id}/html").content.decode()
    assert "Pro (monthly) 2026-03-10 – 2026-04-10" in html and "TENOFF" in html
    assert "Subscription 2026-03-10 – 2026-04-10" in html
    pdf = client_as(owner).get(f"/api/v1/invoices/{invoice_id}/pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")


def test_staff_create_repeating_coupons_with_their_periods():
    staff = f.StaffUserFactory()
    body = {
        "code": "THREE",
        "discount_type": "percentage",
        "discount_value": "20",
        "valid_from": "2026-01-01T00:00:00Z",
        "duration": "repeating",
    }
    refused = client_as(staff).post("/api/v1/coupons", body, format="json")
    assert refused.status_code == 400 and "duration_in_periods" in refused.json()["error"]["details"]
    created = client_as(staff).post("/api/v1/coupons", {**body, "duration_in_periods": 3}, format="json")
    assert created.status_code == 201 and created.json()["duration_in_periods"] == 3


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_subscriptions_of_one_organization_leave_one(plan, gateways, owner):
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    from django.db import connection

    from celaest.errors import Conflict

    start = Barrier(4)

    def subscribe(interval):
        try:
            start.wait()
            subscription_create(
                organization=owner.organization, user=owner, plan=plan, interval=interval, gateway_code="manual"
            )
            return "ok"
        except Conflict as exc:
            return exc.code
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = sorted(pool.map(subscribe, ["month", "year", "month", "year"]))
    assert outcomes == ["already_subscribed"] * 3 + ["ok"]
    assert Subscription.objects.count() == 1 and License.objects.count() == 1
    assert Invoice.objects.count() == 1


def test_staff_record_a_bank_transfer_from_the_subscription_admin(client, owner, plan, gateways):
    subscription = subscription_create(
        organization=owner.organization, user=owner, plan=plan, interval="month", gateway_code="manual"
    )
    client.force_login(f.StaffUserFactory())
    response = client.post(
        "/admin/billing/subscription/",
        {"action": "record_transfer", "_selected_action": [str(subscription.pk)]},
    )
    assert response.status_code == 302
    subscription.refresh_from_db()
    assert subscription.status == "active" and subscription.invoices.get().status == "paid"
    assert License.objects.get(pk=subscription.license_id).expires_at == subscription.current_period_end
