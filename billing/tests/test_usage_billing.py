"""AI usage on the invoice: what a plan includes, overage priced per 1k tokens, per request or as
provider cost plus a markup (or hard-capped), billed from ``license_usage_log`` as lines of the
renewal invoice; alerts at 80% and 100% of the allowance, once each per month, as webhook events
and e-mail."""

from datetime import UTC, date, datetime
from decimal import Decimal as D  # noqa: N817 - amounts read as D("49.00")

import pytest
import time_machine

from billing.models import Invoice, UsageAlert
from billing.pricing import overage_lines
from billing.services.renewals import invoice_collect, subscriptions_renew_due
from billing.services.subscriptions import subscription_create
from billing.services.usage_alerts import usage_alerts_check
from identity.models import User
from settings_app.models import WebhookDelivery
from tests import factories as f

pytestmark = pytest.mark.django_db


def _terms(**values):
    return f.PlanBillingTermsFactory.build(**values)


@pytest.mark.parametrize(
    ("terms", "usage", "expected"),
    [
        # 1,000,000 tokens included, spent on input first: 250,000 output tokens over at 0.012 per 1k
        (
            {"overage": "per_token", "included_tokens": 1_000_000, "price_per_1k_input_tokens": D("0.004"),
             "price_per_1k_output_tokens": D("0.012")},
            {"requests": 10, "tokens_input": 900_000, "tokens_output": 350_000, "cost": D("0")},
            [D("3.000")],
        ),
        # over on both: 200,000 input at 0.004 and 400,000 output at 0.012 per 1k
        (
            {"overage": "per_token", "included_tokens": 1_000_000, "price_per_1k_input_tokens": D("0.004"),
             "price_per_1k_output_tokens": D("0.012")},
            {"requests": 10, "tokens_input": 1_200_000, "tokens_output": 400_000, "cost": D("0")},
            [D("0.800"), D("4.800")],
        ),
        # 234 requests over 1,000 at 0.02
        (
            {"overage": "per_request", "included_ai_requests": 1_000, "price_per_request": D("0.02")},
            {"requests": 1_234, "tokens_input": 0, "tokens_output": 0, "cost": D("0")},
            [D("4.68")],
        ),
        # 112.34567891 USD over 500 plus 20%
        (
            {"overage": "cost_plus", "included_ai_spend": D("500"), "cost_markup_percent": D("20")},
            {"requests": 1, "tokens_input": 0, "tokens_output": 0, "cost": D("612.34567891")},
            [D("134.814814692")],
        ),
        # within the allowance, or hard-capped: nothing
        (
            {"overage": "per_request", "included_ai_requests": 1_000, "price_per_request": D("0.02")},
            {"requests": 1_000, "tokens_input": 0, "tokens_output": 0, "cost": D("0")},
            [],
        ),
        (
            {"overage": "hard_cap", "included_ai_requests": 1_000, "price_per_request": D("0.02")},
            {"requests": 5_000, "tokens_input": 0, "tokens_output": 0, "cost": D("9")},
            [],
        ),
    ],
)  # fmt: skip
def test_overage_against_hand_computed_amounts(terms, usage, expected):
    lines = overage_lines(terms=_terms(**terms), label="AI usage January 2026", **usage)
    assert [line.amount for line in lines] == expected
    assert all(line.kind == "overage" and line.description.startswith("AI usage January 2026") for line in lines)


@pytest.mark.usefixtures("eager_tasks")  # the renewal queues its card charge
def test_the_renewal_invoice_carries_the_closed_months_overage(stripe_api):
    f.PaymentGatewayFactory(code="stripe", name="Card", provider="stripe")
    f.TaxRateFactory(code="es-vat", rate=D("21.000"), country_code="ES")
    plan = f.SubscriptionPlanFactory(code="pro", name="Pro", price_monthly=D("49.00"))
    f.PlanBillingTermsFactory(
        plan=plan,
        overage="per_token",
        included_tokens=1_000_000,
        price_per_1k_input_tokens=D("0.004"),
        price_per_1k_output_tokens=D("0.012"),
    )
    owner = f.UserFactory(role=User.Role.OWNER, organization=f.OrganizationFactory(settings={"country": "ES"}))
    f.PaymentMethodFactory(user=owner, is_default=True, gateway_token="pm_card_visa")
    with time_machine.travel(datetime(2026, 1, 10, tzinfo=UTC), tick=False) as clock:
        subscription = subscription_create(
            organization=owner.organization, user=owner, plan=plan, interval="month", gateway_code="stripe"
        )
        invoice_collect(invoice_id=subscription.invoices.get().pk)
        license = subscription.license
        f.LicenseUsageLogFactory(
            license=license, period_start=date(2026, 1, 1), period_end=date(2026, 1, 31),
            tokens_input=900_000, tokens_output=350_000,
        )  # fmt: skip
        f.LicenseUsageLogFactory(  # the month still running: billed at the next renewal
            license=license, period_start=date(2026, 2, 1), period_end=date(2026, 2, 28), tokens_output=5_000_000
        )
        clock.move_to(datetime(2026, 2, 10, 0, 1, tzinfo=UTC))
        assert subscriptions_renew_due() == 1
        clock.move_to(datetime(2026, 3, 10, 0, 1, tzinfo=UTC))
        assert subscriptions_renew_due() == 1
    first, february, march = Invoice.objects.filter(subscription=subscription).order_by("issued_at")
    assert [line.kind for line in first.lines.all()] == ["plan"]
    assert [(line.kind, line.amount) for line in february.lines.order_by("position")] == [
        ("plan", D("49.0000")),
        ("overage", D("3.0000")),
    ]
    assert "250,000 output tokens" in february.lines.get(kind="overage").description
    assert (february.subtotal, february.tax_total, february.total) == (D("52.00"), D("10.92"), D("62.92"))
    assert february.status == "paid"
    # February: 5,000,000 output tokens, 1,000,000 included: 4,000 × 0.012
    assert march.lines.get(kind="overage").amount == D("48.0000")
    assert (march.subtotal, march.total) == (D("97.00"), D("117.37"))
    assert stripe_api.intents[march.gateway_reference]["amount"] == 11737


@pytest.mark.usefixtures("eager_tasks")
def test_usage_alerts_at_80_and_100_percent_once_each_per_month(mailoutbox, django_capture_on_commit_callbacks):
    plan = f.SubscriptionPlanFactory(name="Starter")
    f.PlanBillingTermsFactory(plan=plan, included_ai_requests=1_000)
    organization = f.OrganizationFactory(email="billing@acme.test")
    owner = f.UserFactory(role=User.Role.OWNER, organization=organization, email="owner@acme.test")
    f.WebhookFactory(organization=organization, user=owner, events=["usage.threshold_reached"])
    subscription = f.SubscriptionFactory(organization=organization, user=owner, plan=plan, license__plan=plan)
    with time_machine.travel(datetime(2026, 4, 20, tzinfo=UTC), tick=False) as clock:
        usage = f.LicenseUsageLogFactory(
            license=subscription.license,
            period_start=date(2026, 4, 1),
            period_end=date(2026, 4, 30),
            ai_requests_count=799,
        )
        assert usage_alerts_check() == 0
        usage.ai_requests_count = 800
        usage.save()
        with django_capture_on_commit_callbacks(execute=True):
            assert usage_alerts_check() == 1
            assert usage_alerts_check() == 0  # once
        usage.ai_requests_count = 1_000
        usage.save()
        with django_capture_on_commit_callbacks(execute=True):
            assert usage_alerts_check() == 1
        clock.move_to(datetime(2026, 5, 3, tzinfo=UTC))  # a new month starts afresh
        f.LicenseUsageLogFactory(
            license=subscription.license,
            period_start=date(2026, 5, 1),
            period_end=date(2026, 5, 31),
            ai_requests_count=1_500,
        )
        assert usage_alerts_check() == 2
    alerts = list(UsageAlert.objects.order_by("period_start", "threshold_percent").values_list(
        "period_start", "metric", "threshold_percent"
    ))  # fmt: skip
    assert alerts == [
        (date(2026, 4, 1), "ai_requests", 80),
        (date(2026, 4, 1), "ai_requests", 100),
        (date(2026, 5, 1), "ai_requests", 80),
        (date(2026, 5, 1), "ai_requests", 100),
    ]
    events = WebhookDelivery.objects.filter(event_type="usage.threshold_reached", attempt_number=1).order_by(
        "created_at"
    )
    assert events.count() == 4
    assert events.first().payload["data"]["threshold_percent"] == 80
    assert [message.subject for message in mailoutbox] == [
        "80% of your plan's ai requests used",
        "100% of your plan's ai requests used",
    ]
    assert mailoutbox[0].to == ["billing@acme.test", "owner@acme.test"]


def test_usage_of_a_paused_month_is_billed_after_the_resume(stripe_api):
    from billing.services.plan_changes import subscription_pause, subscription_resume

    f.PaymentGatewayFactory(code="stripe", name="Card", provider="stripe")
    plan = f.SubscriptionPlanFactory(price_monthly=D("49.00"))
    f.PlanBillingTermsFactory(plan=plan, overage="per_request", included_ai_requests=100, price_per_request=D("0.10"))
    owner = f.UserFactory(role=User.Role.OWNER)
    f.PaymentMethodFactory(user=owner, is_default=True, gateway_token="pm_card_visa")
    with time_machine.travel(datetime(2026, 1, 10, tzinfo=UTC), tick=False) as clock:
        subscription = subscription_create(
            organization=owner.organization, user=owner, plan=plan, interval="month", gateway_code="stripe"
        )
        invoice_collect(invoice_id=subscription.invoices.get().pk)
        f.LicenseUsageLogFactory(
            license=subscription.license, period_start=date(2026, 1, 1), period_end=date(2026, 1, 31),
            ai_requests_count=150,
        )  # fmt: skip
        clock.move_to(datetime(2026, 1, 20, tzinfo=UTC))
        subscription_pause(subscription=subscription)
        clock.move_to(datetime(2026, 2, 20, tzinfo=UTC))
        subscription_resume(subscription=subscription)  # paused 31 days: the periods count from 13 March
        clock.move_to(datetime(2026, 3, 13, 0, 1, tzinfo=UTC))
        assert subscriptions_renew_due() == 1
    renewal = Invoice.objects.get(subscription=subscription, billing_reason="subscription_cycle")
    assert renewal.lines.get(kind="overage").amount == D("5.0000")  # 50 requests over × 0.10
