"""Demo subscriptions, through billing's services: the plans' billing terms, Acme on Pro paid by
bank transfer (its first invoice paid, a service credit issued against it, 80% of its tokens
used), the demo organization in its Starter trial."""

from decimal import Decimal

from billing.models import PlanBillingTerms, Subscription
from billing.services.credit_notes import credit_note_issue
from billing.services.subscription_invoices import subscription_invoice_paid
from billing.services.subscriptions import subscription_create
from billing.services.usage_alerts import usage_alert_raise
from demo.loaders.base import DEMO_ORG_SLUG, SECOND_ORG_SLUG, DemoRun
from licensing.usage import usage_period

# plan: trial days, included requests, included tokens, included USD, overage, prices
_TERMS = {
    "starter": {"trial_days": 14, "included_ai_requests": 1_000, "overage": "per_request", "price_per_request": "0.02"},
    "pro": {
        "included_tokens": 2_000_000,
        "overage": "per_token",
        "price_per_1k_input_tokens": "0.004",
        "price_per_1k_output_tokens": "0.012",
    },
    "enterprise": {"included_ai_spend": "500.00", "overage": "cost_plus", "cost_markup_percent": "20"},
}


def seed_subscriptions(demo: DemoRun) -> None:
    for code, terms in _TERMS.items():
        values = {
            key: Decimal(value) if isinstance(value, str) and key != "overage" else value
            for key, value in terms.items()
        }
        PlanBillingTerms.objects.get_or_create(plan=demo.plans[code], defaults=values)

    acme = demo.orgs[SECOND_ORG_SLUG]
    if not Subscription.objects.filter(organization=acme).exists():
        owner = demo.person(SECOND_ORG_SLUG, "owner")
        subscription = subscription_create(
            organization=acme,
            user=owner,
            plan=demo.plans["pro"],
            interval="month",
            gateway_code="manual",
            with_trial=False,
        )
        invoice = subscription_invoice_paid(invoice=subscription.invoices.get(), reference="demo-transfer")
        credit_note_issue(invoice=invoice, amount=Decimal("10.00"), reason="Service credit: API outage of 2 hours")
        included = Decimal(_TERMS["pro"]["included_tokens"])
        usage_alert_raise(
            subscription_id=subscription.pk,
            organization_id=acme.pk,
            month=usage_period(demo.now.date())[0],
            metric="tokens",
            threshold=80,
            used=included * Decimal("0.8"),
            included=included,
        )

    demo_org = demo.orgs[DEMO_ORG_SLUG]
    if not Subscription.objects.filter(organization=demo_org).exists():
        subscription_create(
            organization=demo_org,
            user=demo.person(DEMO_ORG_SLUG, "owner"),
            plan=demo.plans["starter"],
            interval="year",
            gateway_code="manual",
        )
