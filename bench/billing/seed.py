"""Seed the renewal benchmark: N subscriptions (default 100,000), each of its own organization,
all due at one boundary, each with its license and, for most, last month's AI usage in
``license_usage_log`` so that the renewal invoice carries overage lines.

The mix (by subscription number ``n``, so every run seeds the same world):

- plans: per-token overage (40%), per-request (25%), provider cost plus 20% (25%), hard cap (10%);
- usage last month: beyond what the plan includes (every third), within it (the rest), none (every
  seventh);
- 10% trialing (the renewal converts them: no usage billed, the trial's months are free);
- coupons: 10% forever 20% off, 5% three periods of 10 EUR off;
- tax: Spain 21% (60%), Germany 19% (30%), none (10%); time zones UTC, Madrid, New York;
- gateways: bank transfer for all but every twentieth, which pays by card (Stripe).

Rows go in with ``bulk_create`` (a few thousand to an INSERT): the demo's rule of seeding through
the services holds for what the benchmark measures (renewal runs through the services); the
seeded rows are the state those services leave after a first paid period, written directly so
100,000 of them take seconds, not hours. Run inside Django (``renewal_bench.py`` calls ``seed``).
"""

import calendar
from datetime import timedelta
from decimal import Decimal

from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.utils import timezone

from billing.models import Coupon, PaymentGateway, PaymentMethod, PlanBillingTerms, Subscription, TaxRate
from identity.models import Organization, User
from licensing.models import License, LicenseUsageLog, SubscriptionPlan
from licensing.services import license_key_generate

CHUNK = 5000
UNUSABLE = make_password(None)  # nobody logs in as the seeded owners
CARD = "pm_card_visa"  # noqa: S105 - Stripe's test payment method, accepted by the local server
_PLANS = (  # code, monthly price, terms, share in tenths
    ("bench-tokens", Decimal("49.00"), {"overage": "per_token", "included_tokens": 1_000_000,
                                        "price_per_1k_input_tokens": Decimal("0.002"),
                                        "price_per_1k_output_tokens": Decimal("0.006")}, 4),
    ("bench-requests", Decimal("29.00"), {"overage": "per_request", "included_ai_requests": 1000,
                                          "price_per_request": Decimal("0.01")}, 2.5),
    ("bench-cost", Decimal("99.00"), {"overage": "cost_plus", "included_ai_spend": Decimal("20"),
                                      "cost_markup_percent": Decimal("20")}, 2.5),
    ("bench-capped", Decimal("19.00"), {"overage": "hard_cap", "included_ai_requests": 500}, 1),
)  # fmt: skip
_ZONES = ("UTC", "Europe/Madrid", "America/New_York")


def _plan_of(n: int, plans: list) -> SubscriptionPlan:
    slot, edge = n % 20, 0.0
    for plan, (*_, tenths) in zip(plans, _PLANS, strict=True):
        edge += tenths * 2
        if slot < edge:
            return plan
    return plans[-1]


def _months_back(moment, months: int):
    index = moment.year * 12 + moment.month - 1 - months
    year, month = divmod(index, 12)
    return moment.replace(year=year, month=month + 1, day=min(moment.day, calendar.monthrange(year, month + 1)[1]))


def _usage(n: int, plan_code: str) -> dict | None:
    """Last month's usage: beyond the plan for every third subscription, none for every seventh."""
    if n % 7 == 0:
        return None
    over = n % 3 == 0
    scale = 1 + (n % 11) / 10
    return {
        "ai_requests_count": int((1500 if over else 600) * scale),
        "tokens_input": int((900_000 if over else 300_000) * scale),
        "tokens_output": int((400_000 if over else 100_000) * scale),
        "calculated_cost": (Decimal("31.25") if over else Decimal("7.50")) * Decimal(str(scale)),
    }


def seed(*, count: int, boundary) -> None:
    """``count`` subscriptions whose current period ends at ``boundary`` (an aware datetime)."""
    with transaction.atomic():
        _seed(count=count, boundary=boundary)


def _seed(*, count: int, boundary) -> None:
    manual, _ = PaymentGateway.objects.get_or_create(
        code="manual", defaults={"name": "Bank transfer", "provider": PaymentGateway.Provider.MANUAL}
    )
    stripe, _ = PaymentGateway.objects.get_or_create(
        code="stripe", defaults={"name": "Card", "provider": PaymentGateway.Provider.STRIPE}
    )
    TaxRate.objects.get_or_create(code="es-vat", defaults={"name": "IVA", "rate": Decimal("21"), "country_code": "ES"})
    TaxRate.objects.get_or_create(code="de-vat", defaults={"name": "MwSt", "rate": Decimal("19"), "country_code": "DE"})
    plans = []
    for code, price, terms, _ in _PLANS:
        plan, _ = SubscriptionPlan.objects.get_or_create(
            code=code,
            defaults={"name": code.title(), "price_monthly": price, "price_yearly": price * 10, "currency": "EUR"},
        )
        PlanBillingTerms.objects.get_or_create(plan=plan, defaults=terms)
        plans.append(plan)
    long_ago = boundary - timedelta(days=400)
    forever, _ = Coupon.objects.get_or_create(
        code="BENCH-FOREVER",
        defaults={"discount_type": "percentage", "discount_value": Decimal("20"), "duration": "forever",
                  "valid_from": long_ago, "currency": "EUR"},
    )  # fmt: skip
    repeating, _ = Coupon.objects.get_or_create(
        code="BENCH-3X10",
        defaults={"discount_type": "fixed", "discount_value": Decimal("10"), "duration": "repeating",
                  "duration_in_periods": 3, "valid_from": long_ago, "currency": "EUR"},
    )  # fmt: skip
    usage_end = boundary.date() - timedelta(days=1)
    usage_start = usage_end - timedelta(days=29)
    anchor = _months_back(boundary, 1)
    for start in range(0, count, CHUNK):
        numbers = range(start, min(start + CHUNK, count))
        organizations = Organization.objects.bulk_create(
            [
                Organization(
                    name=f"Renewal bench {n}",
                    slug=f"renewal-bench-{n}",
                    email=f"billing@renewal-bench-{n}.example",
                    settings={
                        "country": ("ES", "ES", "ES", "DE", "DE", "")[n % 6] if n % 10 else "",
                        "timezone": _ZONES[n % 3],
                    },
                )  # fmt: skip
                for n in numbers
            ]
        )
        users = User.objects.bulk_create(
            [
                User(
                    organization=organization,
                    email=f"owner@renewal-bench-{n}.example",
                    role=User.Role.OWNER,
                    first_name="Owner",
                    last_name=str(n),
                    password=UNUSABLE,
                )  # fmt: skip
                for n, organization in zip(numbers, organizations, strict=True)
            ]
        )
        trialing = {n for n in numbers if n % 10 == 5}
        by_card = {n for n in numbers if n % 20 == 7}
        licenses = License.objects.bulk_create(
            [
                License(
                    organization=organization,
                    plan=_plan_of(n, plans),
                    license_key=license_key_generate(),
                    status=License.Status.TRIAL if n in trialing else License.Status.ACTIVE,
                    expires_at=boundary,
                )
                for n, organization in zip(numbers, organizations, strict=True)
            ]
        )
        methods = dict(
            zip(
                sorted(by_card),
                PaymentMethod.objects.bulk_create(
                    [
                        PaymentMethod(
                            organization=users[n - start].organization,
                            user=users[n - start],
                            gateway=stripe,
                            type=PaymentMethod.Type.CARD,
                            card_brand="visa",
                            card_last4="4242",
                            exp_month=12,
                            exp_year=2030,
                            gateway_token=CARD,
                            gateway_customer=f"cus_bench_{n}",
                            is_default=True,
                        )  # fmt: skip
                        for n in sorted(by_card)
                    ]
                ),
                strict=True,
            )
        )
        subscriptions = []
        for n, organization, user, license in zip(numbers, organizations, users, licenses, strict=True):
            trial = n in trialing
            subscriptions.append(
                Subscription(
                    organization=organization,
                    user=user,
                    license=license,
                    plan=license.plan,
                    interval=Subscription.Interval.MONTH,
                    status=Subscription.Status.TRIALING if trial else Subscription.Status.ACTIVE,
                    currency="EUR",
                    gateway=stripe if n in by_card else manual,
                    payment_method=methods.get(n),
                    coupon=None if trial else forever if n % 10 == 3 else repeating if n % 20 == 9 else None,
                    billing_anchor=boundary if trial else anchor,
                    periods_billed=0 if trial else 1,
                    current_period_start=boundary - timedelta(days=14) if trial else anchor,
                    current_period_end=boundary,
                    trial_end=boundary if trial else None,
                    usage_billed_through=None if trial else usage_start - timedelta(days=1),
                )
            )
        Subscription.objects.bulk_create(subscriptions)
        LicenseUsageLog.objects.bulk_create(
            [
                LicenseUsageLog(
                    organization=organization, license=license, period_start=usage_start, period_end=usage_end, **usage
                )  # fmt: skip
                for n, organization, license in zip(numbers, organizations, licenses, strict=True)
                if (usage := _usage(n, license.plan.code)) is not None
            ]
        )


def boundary_now():
    """A boundary just passed: the start of the current minute, less ten minutes."""
    return timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=10)
