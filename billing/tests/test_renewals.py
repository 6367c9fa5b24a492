"""Renewal: the beat job issues each period's invoice exactly once (gapless numbers, the
organization's tax, the coupon while it lasts), collects it (Stripe off-session through the real
SDK against a local server speaking Stripe's API; bank transfer with a due date) and extends the
license on payment. Time travels across month ends, leap years and time zones."""

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal as D  # noqa: N817 - amounts read as D("49.00")
from threading import Barrier
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection

from billing.models import Coupon, Invoice, Subscription
from billing.periods import period_boundary
from billing.services.renewals import subscriptions_renew_due
from billing.services.subscription_invoices import subscription_invoice_paid
from billing.services.subscriptions import subscription_create
from billing.tasks import renew_subscriptions
from identity.models import User
from licensing.models import License
from tests import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def plan():
    f.PaymentGatewayFactory(code="manual", provider="manual")
    f.PaymentGatewayFactory(code="stripe", name="Card", provider="stripe")
    f.TaxRateFactory(code="es-vat", rate=D("21.000"), country_code="ES")
    return f.SubscriptionPlanFactory(code="pro", name="Pro", price_monthly=D("49.00"), price_yearly=D("490.00"))


def _owner(**settings):
    organization = f.OrganizationFactory(settings={"country": "ES", **settings})
    return f.UserFactory(role=User.Role.OWNER, organization=organization)


def _card(owner, token="pm_card_visa"):  # noqa: S107 - a Stripe test payment method id
    return f.PaymentMethodFactory(user=owner, is_default=True, gateway_token=token, gateway_customer="cus_1")


def _subscribe(owner, plan, *, gateway="stripe", interval="month", coupon_code=""):
    return subscription_create(
        organization=owner.organization,
        user=owner,
        plan=plan,
        interval=interval,
        gateway_code=gateway,
        coupon_code=coupon_code,
    )


def _first_collect(subscription):
    from billing.services.renewals import invoice_collect

    return invoice_collect(invoice_id=subscription.invoices.get().pk)


# --- periods -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("anchor", "interval", "index", "expected"),
    [
        (datetime(2026, 1, 31, 10, tzinfo=UTC), "month", 1, datetime(2026, 2, 28, 10, tzinfo=UTC)),
        (datetime(2026, 1, 31, 10, tzinfo=UTC), "month", 2, datetime(2026, 3, 31, 10, tzinfo=UTC)),
        (datetime(2028, 1, 31, 10, tzinfo=UTC), "month", 1, datetime(2028, 2, 29, 10, tzinfo=UTC)),
        (datetime(2028, 2, 29, tzinfo=UTC), "year", 1, datetime(2029, 2, 28, tzinfo=UTC)),
        (datetime(2028, 2, 29, tzinfo=UTC), "year", 4, datetime(2032, 2, 29, tzinfo=UTC)),
        (datetime(2026, 12, 15, tzinfo=UTC), "month", 1, datetime(2027, 1, 15, tzinfo=UTC)),
    ],
)
def test_period_boundaries_count_from_the_anchor(anchor, interval, index, expected):
    assert period_boundary(anchor=anchor, index=index, interval=interval) == expected


def test_boundaries_keep_the_local_time_across_daylight_saving():
    madrid = ZoneInfo("Europe/Madrid")
    anchor = datetime(2026, 3, 15, 9, 0, tzinfo=madrid)  # 08:00 UTC, winter time
    boundary = period_boundary(anchor=anchor, index=1, interval="month", zone=madrid)
    assert boundary == datetime(2026, 4, 15, 7, 0, tzinfo=UTC)  # 09:00 in Madrid, summer time
    assert boundary.astimezone(madrid).hour == 9


# --- renewal -----------------------------------------------------------------------------------


@pytest.mark.usefixtures("eager_tasks")  # the renewal queues its card charge
def test_monthly_renewals_across_month_ends_charge_the_card_and_extend_the_license(plan, stripe_api):
    owner = _owner()
    _card(owner)
    with time_machine.travel(datetime(2026, 1, 31, 10, 0, tzinfo=UTC), tick=False) as clock:
        subscription = _subscribe(owner, plan)
        assert _first_collect(subscription) == "paid"
        clock.move_to(datetime(2026, 2, 28, 9, 59, tzinfo=UTC))
        assert subscriptions_renew_due() == 0  # one minute early
        clock.move_to(datetime(2026, 2, 28, 10, 5, tzinfo=UTC))
        assert subscriptions_renew_due() == 1
        assert subscriptions_renew_due() == 0  # a second run finds nothing due
        clock.move_to(datetime(2026, 3, 31, 10, 1, tzinfo=UTC))
        assert renew_subscriptions() == 1  # the beat task
    invoices = list(Invoice.objects.filter(subscription=subscription).order_by("issued_at"))
    assert [invoice.invoice_number for invoice in invoices] == ["INV-2026-000001", "INV-2026-000002", "INV-2026-000003"]
    assert [
        (invoice.period_start.date().isoformat(), invoice.period_end.date().isoformat()) for invoice in invoices
    ] == [
        ("2026-01-31", "2026-02-28"),
        ("2026-02-28", "2026-03-31"),
        ("2026-03-31", "2026-04-30"),
    ]
    assert all(invoice.status == "paid" and invoice.total == D("59.29") for invoice in invoices)
    assert {intent["amount"] for intent in stripe_api.intents.values()} == {5929}
    assert len(stripe_api.intents) == 3
    license = License.objects.get(pk=subscription.license_id)
    assert license.status == "active" and license.expires_at == datetime(2026, 4, 30, 10, 0, tzinfo=UTC)


@pytest.mark.usefixtures("eager_tasks")  # the renewal queues its card charge
def test_a_yearly_plan_from_a_leap_day_renews_on_the_28th(plan, stripe_api):
    owner = _owner()
    _card(owner)
    with time_machine.travel(datetime(2028, 2, 29, 12, 0, tzinfo=UTC), tick=False) as clock:
        subscription = _subscribe(owner, plan, interval="year")
        _first_collect(subscription)
        clock.move_to(datetime(2029, 2, 28, 12, 1, tzinfo=UTC))
        assert subscriptions_renew_due() == 1
    renewal = Invoice.objects.filter(subscription=subscription).order_by("issued_at").last()
    assert renewal.period_end == datetime(2030, 2, 28, 12, 0, tzinfo=UTC)
    assert renewal.subtotal == D("490.0000") and renewal.invoice_number == "INV-2029-000001"
    assert License.objects.get(pk=subscription.license_id).expires_at == renewal.period_end


def test_periods_follow_the_organizations_time_zone(plan, stripe_api):
    owner = _owner(timezone="America/New_York")
    _card(owner)
    # Midnight of 1 March in New York (winter time, UTC-5).
    with time_machine.travel(datetime(2026, 3, 1, 5, 0, tzinfo=UTC), tick=False) as clock:
        subscription = _subscribe(owner, plan)
        assert subscription.current_period_end == datetime(2026, 4, 1, 4, 0, tzinfo=UTC)  # midnight, summer time
        _first_collect(subscription)
        clock.move_to(datetime(2026, 4, 1, 4, 0, tzinfo=UTC))
        assert subscriptions_renew_due() == 1
    subscription.refresh_from_db()
    assert subscription.current_period_end == datetime(2026, 5, 1, 4, 0, tzinfo=UTC)


def test_a_bank_transfer_renewal_is_due_in_14_days_and_the_license_waits_for_it(plan):
    owner = _owner()
    with time_machine.travel(datetime(2026, 5, 10, 8, 0, tzinfo=UTC), tick=False) as clock:
        subscription = _subscribe(owner, plan, gateway="manual")
        subscription_invoice_paid(invoice=subscription.invoices.get(), reference="transfer-1")
        clock.move_to(datetime(2026, 6, 10, 8, 30, tzinfo=UTC))
        assert subscriptions_renew_due() == 1
        renewal = Invoice.objects.get(subscription=subscription, status="issued")
        assert renewal.due_at == datetime(2026, 6, 24, 8, 30, tzinfo=UTC)
        license = License.objects.get(pk=subscription.license_id)
        # valid while the transfer is awaited: the due date plus the 7 days of grace
        assert license.status == "active" and license.expires_at == datetime(2026, 7, 1, 8, 30, tzinfo=UTC)
        clock.move_to(datetime(2026, 6, 20, tzinfo=UTC))
        subscription_invoice_paid(invoice=renewal, reference="transfer-2")
    license.refresh_from_db()
    assert license.expires_at == datetime(2026, 7, 10, 8, 0, tzinfo=UTC)


def test_the_organizations_current_tax_applies_at_each_renewal(plan, stripe_api):
    owner = _owner()
    _card(owner)
    f.TaxRateFactory(code="de-vat", rate=D("19.000"), country_code="DE")
    with time_machine.travel(datetime(2026, 1, 5, tzinfo=UTC), tick=False) as clock:
        subscription = _subscribe(owner, plan)
        _first_collect(subscription)
        owner.organization.settings = {"country": "DE"}
        owner.organization.save()
        clock.move_to(datetime(2026, 2, 5, 0, 1, tzinfo=UTC))
        subscriptions_renew_due()
    first, renewal = Invoice.objects.filter(subscription=subscription).order_by("issued_at")
    assert (first.tax_rate_percent, first.tax_total, first.total) == (D("21.000"), D("10.29"), D("59.29"))
    assert (renewal.tax_rate_percent, renewal.tax_total, renewal.total) == (D("19.000"), D("9.31"), D("58.31"))


@pytest.mark.parametrize(
    ("duration", "periods", "discounted"),
    [("once", None, [True, False, False, False]), ("repeating", 2, [True, True, False, False]),
     ("forever", None, [True, True, True, True])],
)  # fmt: skip
def test_coupon_durations(plan, duration, periods, discounted):
    f.CouponFactory(
        code="HALF",
        discount_value=D("50"),
        duration=duration,
        duration_in_periods=periods,
        valid_from=datetime(2026, 1, 1, tzinfo=UTC),
        valid_until=datetime(2026, 2, 1, tzinfo=UTC),
    )
    owner = _owner()
    with time_machine.travel(datetime(2026, 1, 10, tzinfo=UTC), tick=False) as clock:
        subscription = _subscribe(owner, plan, gateway="manual", coupon_code="HALF")
        subscription_invoice_paid(invoice=subscription.invoices.get(), reference="transfer")
        for month in (2, 3, 4):  # the coupon's validity ended: it still counts for what it promised
            clock.move_to(datetime(2026, month, 10, 0, 1, tzinfo=UTC))
            assert subscriptions_renew_due() == 1
    invoices = Invoice.objects.filter(subscription=subscription).order_by("issued_at")
    assert [invoice.discount_total == D("24.50") for invoice in invoices] == discounted
    assert [invoice.total for invoice in invoices] == [D("29.65") if applied else D("59.29") for applied in discounted]
    assert Coupon.objects.get(code="HALF").times_redeemed == 1


def test_a_cancellation_at_period_end_stops_renewal(plan, stripe_api):
    from billing.services.plan_changes import subscription_cancel

    owner = _owner()
    _card(owner)
    with time_machine.travel(datetime(2026, 1, 10, tzinfo=UTC), tick=False) as clock:
        subscription = _subscribe(owner, plan)
        _first_collect(subscription)
        subscription_cancel(subscription=subscription, at_period_end=True)
        clock.move_to(datetime(2026, 2, 10, 0, 1, tzinfo=UTC))
        assert subscriptions_renew_due() == 0
    subscription.refresh_from_db()
    assert subscription.status == "cancelled" and subscription.invoices.count() == 1
    assert License.objects.get(pk=subscription.license_id).expires_at == datetime(2026, 2, 10, tzinfo=UTC)


@pytest.mark.usefixtures("eager_tasks")  # the renewal queues its card charge
@pytest.mark.django_db(transaction=True)
def test_two_renewal_runs_at_once_issue_one_invoice(plan, stripe_api):
    owner = _owner()
    _card(owner)
    with time_machine.travel(datetime(2026, 1, 10, tzinfo=UTC), tick=False) as clock:
        subscription = _subscribe(owner, plan)
        _first_collect(subscription)
        clock.move_to(datetime(2026, 2, 10, 0, 1, tzinfo=UTC))
        start = Barrier(2)

        def run(_):
            try:
                start.wait()
                return subscriptions_renew_due()
            finally:
                connection.close()

        with ThreadPoolExecutor(max_workers=2) as pool:
            outcomes = sorted(pool.map(run, range(2)))
    assert outcomes == [0, 1]
    assert Invoice.objects.filter(subscription=subscription).count() == 2
    assert [invoice.invoice_number for invoice in Invoice.objects.order_by("invoice_number")] == [
        "INV-2026-000001",
        "INV-2026-000002",
    ]
    assert len(stripe_api.intents) == 2  # the first invoice and one renewal charge
    assert Subscription.objects.get(pk=subscription.pk).periods_billed == 2


def test_operators_run_subscription_billing_by_hand(plan):
    from io import StringIO

    from django.core.management import call_command

    owner = _owner()
    with time_machine.travel(datetime(2026, 1, 10, tzinfo=UTC), tick=False) as clock:
        subscription = _subscribe(owner, plan, gateway="manual")
        subscription_invoice_paid(invoice=subscription.invoices.get(), reference="transfer")
        clock.move_to(datetime(2026, 2, 10, 0, 1, tzinfo=UTC))
        out = StringIO()
        call_command("bill_subscriptions", stdout=out)
        call_command("bill_subscriptions", stdout=StringIO())  # a second run finds nothing more to do
    assert out.getvalue().startswith("1 renewal invoice(s) issued; 0 charge(s) retried")
    assert Invoice.objects.filter(subscription=subscription).count() == 2
