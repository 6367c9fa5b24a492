"""Renewal in set-based batches: concurrent runs split the due subscriptions and never issue
twice (real PostgreSQL, one connection per thread), a batch bills exactly what the
per-subscription preview shows, and a trial's conversion says so in one event."""

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from decimal import Decimal as D  # noqa: N817 - amounts read as D("49.00")
from threading import Barrier

import pytest
import time_machine
from django.db import connection

from billing.models import Invoice, Subscription
from billing.services.renewals import subscription_upcoming_invoice, subscriptions_renew_due
from billing.services.subscription_invoices import subscription_invoice_paid
from billing.services.subscriptions import subscription_create
from celaest.celery import app as celery_app
from identity.models import User
from licensing.models import License
from settings_app.models import WebhookDelivery
from tests import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def plan():
    f.PaymentGatewayFactory(code="manual", provider="manual")
    f.TaxRateFactory(code="es-vat", rate=D("21.000"), country_code="ES")
    plan = f.SubscriptionPlanFactory(code="pro", name="Pro", price_monthly=D("49.00"), price_yearly=D("490.00"))
    f.PlanBillingTermsFactory(plan=plan, overage="per_request", included_ai_requests=1000, price_per_request=D("0.02"))
    return plan


def _paid_subscription(plan, *, country="ES", coupon_code="", **organization_settings):
    organization = f.OrganizationFactory(settings={"country": country, **organization_settings})
    owner = f.UserFactory(role=User.Role.OWNER, organization=organization)
    subscription = subscription_create(
        organization=organization, user=owner, plan=plan, interval="month", gateway_code="manual",
        coupon_code=coupon_code, with_trial=False,
    )  # fmt: skip
    subscription_invoice_paid(invoice=subscription.invoices.get(), reference="transfer")
    return subscription


def _numbers() -> list[str]:
    return list(Invoice.objects.order_by("invoice_number").values_list("invoice_number", flat=True))


@pytest.mark.django_db(transaction=True)
def test_two_batch_runs_at_once_split_the_work_and_issue_one_invoice_each(plan):
    with time_machine.travel(datetime(2026, 1, 10, tzinfo=UTC), tick=False) as clock:
        subscriptions = [_paid_subscription(plan) for _ in range(9)]
        clock.move_to(datetime(2026, 2, 10, 0, 1, tzinfo=UTC))
        start = Barrier(2)

        def run(workers):  # one run alone, the other with two threads of its own
            try:
                start.wait()
                return subscriptions_renew_due(batch_size=2, workers=workers)
            finally:
                connection.close()

        with ThreadPoolExecutor(max_workers=2) as pool:
            issued = list(pool.map(run, (1, 2)))
    assert sum(issued) == 9
    renewals = Invoice.objects.filter(billing_reason=Invoice.Reason.SUBSCRIPTION_CYCLE)
    assert sorted(renewals.values_list("subscription_id", flat=True)) == sorted(s.pk for s in subscriptions)
    assert _numbers() == [f"INV-2026-{n:06d}" for n in range(1, 19)]  # 9 first invoices, 9 renewals
    assert set(Subscription.objects.values_list("periods_billed", flat=True)) == {2}
    assert set(renewals.values_list("collection_attempts", flat=True)) == {1}  # the transfer is awaited


def test_a_batch_bills_what_each_subscriptions_preview_shows(plan):
    f.TaxRateFactory(code="de-vat", rate=D("19.000"), country_code="DE")
    f.CouponFactory(
        code="TENOFF", discount_type="fixed", discount_value=D("10"), duration="repeating", duration_in_periods=2,
        valid_from=datetime(2026, 1, 1, tzinfo=UTC),
    )  # fmt: skip
    with time_machine.travel(datetime(2026, 1, 10, tzinfo=UTC), tick=False) as clock:
        subscriptions = [
            _paid_subscription(plan),
            _paid_subscription(plan, country="DE", coupon_code="TENOFF"),
            _paid_subscription(plan, country="", timezone="America/New_York"),
        ]
        for subscription, requests in zip(subscriptions, (1500, 900, 2345), strict=True):
            f.LicenseUsageLogFactory(
                license=subscription.license, period_start=date(2026, 1, 1), period_end=date(2026, 1, 31),
                ai_requests_count=requests,
            )  # fmt: skip
        clock.move_to(datetime(2026, 2, 10, 5, 1, tzinfo=UTC))
        previews = {s.pk: subscription_upcoming_invoice(Subscription.objects.get(pk=s.pk))[1] for s in subscriptions}
        assert subscriptions_renew_due(batch_size=10) == 3
    for subscription in subscriptions:
        invoice = Invoice.objects.get(subscription=subscription, billing_reason=Invoice.Reason.SUBSCRIPTION_CYCLE)
        draft = previews[subscription.pk]
        amounts = (invoice.subtotal, invoice.discount_total, invoice.tax_total, invoice.total)
        assert amounts == (draft.amounts.subtotal, draft.amounts.discount, draft.amounts.tax, draft.amounts.total)
        assert [(line.kind, line.amount) for line in invoice.lines.all()] == [
            (line.kind, line.amount) for line in draft.lines
        ]
    by_country = {
        invoice.billing_details["country"]: (invoice.subtotal, invoice.discount_total, invoice.total)
        for invoice in Invoice.objects.filter(billing_reason=Invoice.Reason.SUBSCRIPTION_CYCLE)
    }
    # 500 requests over at 0.02 = 10.00; within; 1,345 over = 26.90 — then the coupon and the tax
    assert by_country == {
        "ES": (D("59.00"), D("0.00"), D("71.39")),
        "DE": (D("49.00"), D("10.00"), D("46.41")),
        "": (D("75.90"), D("0.00"), D("75.90")),
    }
    assert Subscription.objects.get(pk=subscriptions[1].pk).coupon_periods_used == 2


def test_a_trial_conversion_emits_exactly_its_events(plan):
    f.PlanBillingTermsFactory._meta.model.objects.filter(plan=plan).update(trial_days=14)
    organization = f.OrganizationFactory(settings={"country": "ES"})
    owner = f.UserFactory(role=User.Role.OWNER, organization=organization)
    f.WebhookFactory(organization=organization, user=owner, events=["*"])
    with time_machine.travel(datetime(2026, 3, 1, tzinfo=UTC), tick=False) as clock:
        subscription = subscription_create(
            organization=organization, user=owner, plan=plan, interval="month", gateway_code="manual"
        )
        assert subscription.status == Subscription.Status.TRIALING
        WebhookDelivery.objects.all().delete()
        clock.move_to(datetime(2026, 3, 15, 0, 1, tzinfo=UTC))
        assert subscriptions_renew_due() == 1
    events = list(WebhookDelivery.objects.order_by("created_at").values_list("event_type", flat=True))
    assert sorted(events) == ["invoice.issued", "license.trial_converted", "subscription.renewed"]
    license = License.objects.get(pk=subscription.license_id)
    # active while the transfer is awaited: due in 14 days, plus 7 days of grace
    assert (license.status, license.expires_at) == ("active", datetime(2026, 4, 5, 0, 1, tzinfo=UTC))
    (converted,) = WebhookDelivery.objects.filter(event_type="license.trial_converted")
    assert converted.payload["data"]["status"] == "active"


def test_a_card_renewal_is_queued_and_a_lost_message_is_charged_by_dunning(plan, stripe_api):
    from billing.services.dunning import invoices_retry_due
    from billing.services.renewals import invoice_collect

    f.PaymentGatewayFactory(code="stripe", name="Card", provider="stripe")
    organization = f.OrganizationFactory(settings={"country": "ES"})
    owner = f.UserFactory(role=User.Role.OWNER, organization=organization)
    f.PaymentMethodFactory(user=owner, is_default=True, gateway_token="pm_card_visa", gateway_customer="cus_1")
    with time_machine.travel(datetime(2026, 1, 10, tzinfo=UTC), tick=False) as clock:
        subscription = subscription_create(
            organization=organization, user=owner, plan=plan, interval="month", gateway_code="stripe"
        )
        assert invoice_collect(invoice_id=subscription.invoices.get().pk) == "paid"
        clock.move_to(datetime(2026, 2, 10, 0, 1, tzinfo=UTC))
        assert subscriptions_renew_due() == 1  # the charge is queued (no worker runs here: the message is lost)
        renewal = Invoice.objects.get(subscription=subscription, billing_reason=Invoice.Reason.SUBSCRIPTION_CYCLE)
        assert (renewal.status, renewal.collection_attempts) == ("issued", 0)
        assert renewal.next_collection_at == datetime(2026, 2, 10, 0, 1, tzinfo=UTC)
        assert len(stripe_api.intents) == 1
        assert invoices_retry_due() == 1  # dunning's pass makes the attempt
        assert invoices_retry_due() == 0
    renewal.refresh_from_db()
    assert (renewal.status, renewal.collection_attempts, renewal.next_collection_at) == ("paid", 1, None)
    assert len(stripe_api.intents) == 2


def test_the_beat_job_hands_the_due_subscriptions_to_the_workers_in_batches_and_issues_nothing_twice(
    plan, eager_tasks, monkeypatch
):
    from billing import tasks
    from billing.services import renewals

    sent = []
    batch_task = celery_app.tasks["billing.renew_subscription_batch"]
    monkeypatch.setattr(batch_task, "delay", lambda ids, now: sent.append(ids) or batch_task.apply(args=(ids, now)))
    with time_machine.travel(datetime(2026, 1, 10, tzinfo=UTC), tick=False) as clock:
        subscriptions = [_paid_subscription(plan) for _ in range(5)]
        clock.move_to(datetime(2026, 2, 10, 0, 1, tzinfo=UTC))
        assert renewals.subscriptions_renew_dispatch(batch_size=2) == 3
        assert sorted(len(batch) for batch in sent) == [1, 2, 2]
        assert tasks.renew_subscriptions() == 0  # nothing is due any more: nothing sent
        # A batch delivered again (its worker died after committing) renews nothing twice.
        assert batch_task.apply(args=(sent[0], datetime(2026, 2, 10, 0, 1, tzinfo=UTC).isoformat())).get() == 0
    renewals_issued = Invoice.objects.filter(billing_reason=Invoice.Reason.SUBSCRIPTION_CYCLE)
    assert sorted(renewals_issued.values_list("subscription_id", flat=True)) == sorted(s.pk for s in subscriptions)
    assert _numbers() == [f"INV-2026-{n:06d}" for n in range(1, 11)]
