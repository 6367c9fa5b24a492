"""Plan changes through the customer API: an upgrade now with a prorated charge, a downgrade at
the period end, cancel at the period end or now with a prorated credit (a partial Stripe
refund, a credit note), pause and resume; the preview shows the amounts first. Proration is
checked against hand-computed figures."""

from datetime import UTC, datetime
from decimal import Decimal as D  # noqa: N817 - amounts read as D("49.00")

import pytest
import time_machine

from audit.models import AuditLog
from billing.models import CreditNote, Invoice, Subscription
from billing.pricing import prorated_amount
from billing.services.renewals import invoice_collect, subscriptions_renew_due
from billing.services.subscriptions import subscription_create
from identity.models import User
from licensing.models import License
from tests import factories as f
from tests.clients import client_as

pytestmark = pytest.mark.django_db

APRIL = datetime(2026, 4, 1, 0, 0, tzinfo=UTC)  # a 30-day period: 2,592,000 seconds


@pytest.fixture
def owner():
    f.PaymentGatewayFactory(code="stripe", name="Card", provider="stripe")
    f.TaxRateFactory(code="es-vat", rate=D("21.000"), country_code="ES")
    f.SubscriptionPlanFactory(code="pro", name="Pro", price_monthly=D("49.00"), price_yearly=D("490.00"))
    f.SubscriptionPlanFactory(code="max", name="Max", price_monthly=D("79.00"), price_yearly=D("790.00"))
    f.SubscriptionPlanFactory(code="lite", name="Lite", price_monthly=D("19.00"), price_yearly=D("190.00"))
    user = f.UserFactory(role=User.Role.OWNER, organization=f.OrganizationFactory(settings={"country": "ES"}))
    f.PaymentMethodFactory(user=user, is_default=True, gateway_token="pm_card_visa")
    return user


@pytest.fixture
def subscription(owner, stripe_api):
    from licensing.models import SubscriptionPlan

    with time_machine.travel(APRIL, tick=False):
        created = subscription_create(
            organization=owner.organization,
            user=owner,
            plan=SubscriptionPlan.objects.get(code="pro"),
            interval="month",
            gateway_code="stripe",
        )
        invoice_collect(invoice_id=created.invoices.get().pk)
    return created


def _url(subscription, action=""):
    return f"/api/v1/subscriptions/{subscription.pk}/{action}".rstrip("/")


def test_the_proration_formula_is_exact():
    start, end = APRIL, datetime(2026, 5, 1, tzinfo=UTC)
    at = datetime(2026, 4, 11, 7, 0, tzinfo=UTC)  # 1,702,800 of 2,592,000 seconds left
    assert prorated_amount(price=D("30"), period_start=start, period_end=end, at=at) == D("30") * 1702800 / 2592000
    assert prorated_amount(price=D("49"), period_start=start, period_end=end, at=start) == D("49")
    assert prorated_amount(price=D("49"), period_start=start, period_end=end, at=end) == 0


def test_an_upgrade_is_previewed_then_charged_now_prorated(owner, subscription, stripe_api):
    with time_machine.travel(datetime(2026, 4, 11, 7, 0, tzinfo=UTC), tick=False):
        preview = client_as(owner).get(_url(subscription, "preview-change"), {"plan": "max"})
        assert preview.status_code == 200, preview.content
        body = preview.json()
        assert body["effective"] == "now" and body["next_period_price"] == "79.00"
        due = body["due_now"]
        # (79 − 49) × 1,702,800 / 2,592,000 = 19.708333… → 19.71; tax 21% → 4.14
        assert (due["subtotal"], due["tax_total"], due["total"]) == ("19.71", "4.14", "23.85")
        assert [line["kind"] for line in due["lines"]] == ["proration", "proration"]
        assert not Invoice.objects.filter(billing_reason="subscription_update").exists()  # a preview writes nothing

        response = client_as(owner).post(_url(subscription, "change-plan"), {"plan": "max"}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["plan"] == "max" and body["invoice"]["total"] == "23.8500" and body["invoice"]["status"] == "paid"
    intent_id = Invoice.objects.get(pk=body["invoice"]["id"]).gateway_reference
    assert stripe_api.intents[intent_id]["amount"] == 2385
    assert AuditLog.objects.filter(
        resource_id=str(subscription.pk), source="api", changes__effective=[None, "now"]
    ).exists()
    # the license follows at once: its limits are the new plan's
    assert License.objects.get(pk=subscription.license_id).plan.code == "max"
    assert AuditLog.objects.filter(resource_id=str(subscription.license_id), changes__plan=["pro", "max"]).exists()


def test_a_downgrade_waits_for_the_period_end(owner, subscription, stripe_api):
    with time_machine.travel(datetime(2026, 4, 20, tzinfo=UTC), tick=False) as clock:
        preview = client_as(owner).get(_url(subscription, "preview-change"), {"plan": "lite"}).json()
        assert preview["effective"] == "period_end" and preview["due_now"] is None
        response = client_as(owner).post(_url(subscription, "change-plan"), {"plan": "lite"}, format="json")
        assert response.status_code == 200 and response.json()["pending_plan"] == "lite"
        assert License.objects.get(pk=subscription.license_id).plan.code == "pro"  # until the period ends
        assert response.json()["plan"] == "pro" and response.json()["invoice"] is None
        upcoming = client_as(owner).get(_url(subscription, "upcoming-invoice")).json()
        assert (upcoming["plan"], upcoming["subtotal"], upcoming["total"]) == ("lite", "19.00", "22.99")
        clock.move_to(datetime(2026, 5, 1, 0, 1, tzinfo=UTC))
        assert subscriptions_renew_due() == 1
    subscription.refresh_from_db()
    assert subscription.plan.code == "lite" and subscription.pending_plan is None
    assert License.objects.get(pk=subscription.license_id).plan.code == "lite"
    renewal = Invoice.objects.get(subscription=subscription, billing_reason="subscription_cycle")
    assert renewal.subtotal == D("19.00")


def test_cancelling_now_credits_the_unused_time_and_refunds_it_through_stripe(owner, subscription, stripe_api):
    with time_machine.travel(datetime(2026, 4, 16, tzinfo=UTC), tick=False):
        response = client_as(owner).post(_url(subscription, "cancel"), {"at_period_end": False}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "cancelled"
    [note] = body["credit_notes"]
    # 49 × 15 / 30 days = 24.50; tax 21% = 5.145 → 5.15
    assert (note["credit_note_number"], note["subtotal"], note["tax_total"], note["total"]) == (
        "CN-2026-000001", "24.5000", "5.1500", "29.6500",
    )  # fmt: skip
    [refund] = stripe_api.refunds.values()
    assert refund["amount"] == 2965
    assert CreditNote.objects.get().gateway_reference == refund["id"]
    license = License.objects.get(pk=subscription.license_id)
    assert license.status == "suspended"
    with time_machine.travel(datetime(2026, 5, 2, tzinfo=UTC), tick=False):
        assert subscriptions_renew_due() == 0


def test_cancelling_at_the_period_end_keeps_the_license_until_then(owner, subscription):
    response = client_as(owner).post(_url(subscription, "cancel"), {}, format="json")
    assert response.status_code == 200 and response.json()["cancel_at_period_end"] is True
    assert response.json()["credit_notes"] == []
    assert License.objects.get(pk=subscription.license_id).status == "active"


def test_pause_and_resume_lengthen_the_period_by_the_pause(owner, subscription, stripe_api):
    with time_machine.travel(datetime(2026, 4, 11, tzinfo=UTC), tick=False) as clock:
        assert client_as(owner).post(_url(subscription, "pause")).json()["status"] == "paused"
        assert License.objects.get(pk=subscription.license_id).status == "suspended"
        clock.move_to(datetime(2026, 5, 2, tzinfo=UTC))
        assert subscriptions_renew_due() == 0  # a paused subscription is not billed
        clock.move_to(datetime(2026, 5, 6, tzinfo=UTC))  # paused 25 days
        body = client_as(owner).post(_url(subscription, "resume")).json()
        assert body["status"] == "active" and body["current_period_end"].startswith("2026-05-26")
        license = License.objects.get(pk=subscription.license_id)
        assert license.status == "active" and license.expires_at == datetime(2026, 5, 26, tzinfo=UTC)
        clock.move_to(datetime(2026, 5, 26, 0, 1, tzinfo=UTC))
        assert subscriptions_renew_due() == 1
    subscription.refresh_from_db()
    assert subscription.current_period_end == datetime(2026, 6, 26, tzinfo=UTC)


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ({}, 400, "invalid"),
        ({"plan": "nope"}, 400, "invalid"),
        ({"plan": "max", "interval": "fortnight"}, 400, "invalid"),
        ({"plan": "pro"}, 400, "no_change"),
    ],
)
def test_bad_plan_changes_are_4xx(owner, subscription, query, status, code):
    response = client_as(owner).get(_url(subscription, "preview-change"), query)
    assert response.status_code == status and response.json()["error"]["code"] == code
    response = client_as(owner).post(_url(subscription, "change-plan"), query, format="json")
    assert response.status_code == status and response.json()["error"]["code"] == code


def test_state_conflicts_are_409(owner, subscription):
    assert client_as(owner).post(_url(subscription, "resume")).json()["error"]["code"] == "subscription_not_paused"
    client_as(owner).post(_url(subscription, "cancel"), {"at_period_end": False}, format="json")
    response = client_as(owner).post(_url(subscription, "pause"))
    assert response.status_code == 409 and response.json()["error"]["code"] == "subscription_not_pausable"
    response = client_as(owner).post(_url(subscription, "cancel"), {"at_period_end": "nope"}, format="json")
    assert response.status_code == 400


def test_members_read_but_only_owners_and_admins_change(owner, subscription):
    viewer = f.UserFactory(organization=owner.organization, role=User.Role.VIEWER)
    assert client_as(viewer).get(_url(subscription, "upcoming-invoice")).status_code == 200
    assert client_as(viewer).get(_url(subscription, "preview-change"), {"plan": "max"}).status_code == 200
    for action in ("change-plan", "cancel", "pause"):
        assert client_as(viewer).post(_url(subscription, action), {"plan": "max"}, format="json").status_code == 403
    admin = f.UserFactory(organization=owner.organization, role=User.Role.ADMIN)
    assert client_as(admin).post(_url(subscription, "pause")).status_code == 200
    assert Subscription.objects.get(pk=subscription.pk).status == "paused"


def test_another_organization_cannot_see_or_change_the_subscription(subscription):
    stranger = f.UserFactory(role=User.Role.OWNER)
    for action in ("", "upcoming-invoice", "preview-change"):
        assert client_as(stranger).get(_url(subscription, action), {"plan": "max"}).status_code == 404
    for action in ("change-plan", "cancel", "pause", "resume"):
        response = client_as(stranger).post(_url(subscription, action), {"plan": "max"}, format="json")
        assert response.status_code == 404
    assert Subscription.objects.get(pk=subscription.pk).status == "active"


def test_credit_notes_are_listed_to_their_organization_with_a_pdf(owner, subscription, stripe_api):
    with time_machine.travel(datetime(2026, 4, 16, tzinfo=UTC), tick=False):
        client_as(owner).post(_url(subscription, "cancel"), {"at_period_end": False}, format="json")
    note = CreditNote.objects.get()
    listed = client_as(owner).get("/api/v1/credit-notes").json()["results"]
    assert [row["credit_note_number"] for row in listed] == [note.credit_note_number]
    pdf = client_as(owner).get(f"/api/v1/credit-notes/{note.pk}/pdf")
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
    stranger = f.UserFactory(role=User.Role.OWNER)
    assert client_as(stranger).get("/api/v1/credit-notes").json()["results"] == []
    assert client_as(stranger).get(f"/api/v1/credit-notes/{note.pk}/pdf").status_code == 404
