"""Budgets of the AI gateway (operations.budgets) against the real Redis: exact under 50
concurrent reservations, settle and release in exact decimals, windows rolling over, abandoned
reservations given back after their TTL, the answer's headers."""

import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.test import override_settings

from celaest.errors import Forbidden, LimitExceeded
from celaest.redis import redis_client
from licensing.usage import MonthUsage
from operations.budgets import (
    BudgetsUnavailable,
    budget_check_model,
    budget_release,
    budget_renew,
    budget_reserve,
    budget_settle,
    budget_usage,
    budget_worst_case_usd,
    rate_limit_headers,
)
from tests.factories import (
    AIModelFactory,
    LicenseFactory,
    LicenseUsageLogFactory,
    SubscriptionPlanFactory,
    UserApiKeyFactory,
)

pytestmark = pytest.mark.django_db

CALL = Decimal("0.0125")  # the worst case of one call


@pytest.fixture(autouse=True)
def _clock():
    """A fixed moment, well inside its minute and day: no window rolls over in the middle of a test
    (the tests of rolling over travel further themselves)."""
    with time_machine.travel(datetime(2026, 12, 9, 10, 0, 5, tzinfo=UTC), tick=False):
        yield


@pytest.fixture
def license():
    plan = SubscriptionPlanFactory(limits={"ai_requests_per_month": 1000, "tokens_per_month": 1_000_000})
    return LicenseFactory(plan=plan)


def key_of(license, **limits):
    api_key = UserApiKeyFactory(user__organization=license.organization, **limits)
    return api_key


def reserve(api_key, license, *, cost=CALL, tokens=100, model="gpt-test"):
    return budget_reserve(
        api_key=api_key,
        license=license,
        model=model,
        max_cost_usd=cost,
        estimated_tokens=tokens,
        call_id=uuid.uuid4(),
    )


def spend(api_key, license, cost=CALL):
    """A call that spent its worst case."""
    budget_settle(reserve(api_key, license, cost=cost), cost_usd=cost, tokens=100)


def concurrently(calls: int, attempt) -> tuple[list, list[LimitExceeded]]:
    """``attempt()`` from ``calls`` threads at once: what succeeded and what was refused."""
    taken, refused = [], []

    def one(_):
        try:
            return attempt(), None
        except LimitExceeded as error:
            return None, error

    with ThreadPoolExecutor(max_workers=calls) as pool:
        for reservation, error in pool.map(one, range(calls)):
            (taken if error is None else refused).append(reservation if error is None else error)
    return taken, refused


def warm(api_key, license):
    """Seed the license's month counter (a PostgreSQL read) before the threads, which use Redis only."""
    budget_release(reserve(api_key, license, cost=Decimal("0"), tokens=0))


# -- exact under concurrency ----------------------------------------------------------------------


def test_fifty_concurrent_calls_take_exactly_the_key_daily_budget(license):
    api_key = key_of(license, spend_limit_daily_usd=CALL * 7)
    warm(api_key, license)

    taken, refused = concurrently(50, lambda: reserve(api_key, license))

    assert len(taken) == 7
    assert len(refused) == 43
    assert {error.code for error in refused} == {"key_budget_daily"}
    assert budget_usage(api_key=api_key, license=license).key_day_usd == CALL * 7
    refusal = refused[0]
    assert refusal.status_code == 429
    assert Decimal(refusal.details["limit"]) == CALL * 7
    assert Decimal(refusal.details["used"]) <= CALL * 7
    assert refusal.details["reset_at"] == "2026-12-10T00:00:00+00:00"
    assert refusal.retry_after == 14 * 3600 - 5


def test_processes_racing_for_one_budget_take_exactly_it(license):
    """Four processes, 25 calls each, against a key's budget of 13 calls: exactly 13 reserved.
    (On the real clock, as the processes are.)"""
    real_now = datetime.fromtimestamp(time_machine.escape_hatch.time.time(), tz=UTC)
    with time_machine.travel(real_now, tick=True):
        _race_processes(license)


def _race_processes(license):
    api_key = key_of(license, spend_limit_daily_usd=CALL * 13)
    warm(api_key, license)
    racers = [
        subprocess.Popen(
            [sys.executable, "-m", "operations.tests.budget_racer", str(api_key.pk), str(license.pk),
             str(CALL * 13), str(CALL), "25"],
            stdout=subprocess.PIPE, text=True,
        )
        for _ in range(4)
    ]  # fmt: skip
    client = redis_client()
    deadline = time.monotonic() + 60
    while int(client.get("budget-race:ready") or 0) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    client.set("budget-race:go", 1)
    reserved = [int(racer.communicate(timeout=60)[0]) for racer in racers]

    assert sum(reserved) == 13
    assert budget_usage(api_key=api_key, license=license).key_day_usd == CALL * 13


def test_fifty_concurrent_calls_take_exactly_the_key_monthly_budget(license):
    api_key = key_of(license, spend_limit_monthly_usd=CALL * 11, spend_limit_daily_usd=CALL * 100)
    warm(api_key, license)

    taken, refused = concurrently(50, lambda: reserve(api_key, license))

    assert len(taken) == 11
    assert {error.code for error in refused} == {"key_budget_monthly"}
    assert budget_usage(api_key=api_key, license=license).key_month_usd == CALL * 11


def test_fifty_concurrent_calls_of_several_keys_take_exactly_the_license_budget(license):
    license.custom_limits = {"ai_usd_per_month": str(CALL * 9)}
    license.save()
    keys = [key_of(license) for _ in range(5)]
    for api_key in keys:
        warm(api_key, license)

    taken, refused = concurrently(50, lambda: reserve(keys[uuid.uuid4().int % 5], license))

    assert len(taken) == 9
    assert {error.code for error in refused} == {"license_budget_monthly"}
    assert budget_usage(api_key=keys[0], license=license).license_month_usd == CALL * 9


def test_fifty_concurrent_calls_take_exactly_the_requests_in_flight(license):
    api_key = key_of(license, max_requests_in_flight=4)
    warm(api_key, license)

    taken, refused = concurrently(50, lambda: reserve(api_key, license))

    assert len(taken) == 4
    assert {error.code for error in refused} == {"key_in_flight"}
    assert refused[0].details["limit"] == 4
    budget_settle(taken[0], cost_usd=Decimal("0.001"), tokens=10)
    assert reserve(api_key, license) is not None  # a slot freed by a settled call
    with pytest.raises(LimitExceeded):
        reserve(api_key, license)


def test_fifty_concurrent_calls_take_exactly_the_tokens_per_minute(license):
    api_key = key_of(license, tokens_per_minute=1000)
    warm(api_key, license)

    taken, refused = concurrently(50, lambda: reserve(api_key, license, tokens=150))

    assert len(taken) == 6  # 6 × 150 = 900; a seventh would make 1,050
    assert {error.code for error in refused} == {"key_tokens_per_minute"}
    assert refused[0].details["limit"] == 1000
    assert refused[0].details["used"] == 900


def test_a_refused_call_reserves_nothing_anywhere(license):
    license.custom_limits = {"ai_usd_per_month": "100"}
    license.save()
    api_key = key_of(license, spend_limit_daily_usd=Decimal("0.02"), tokens_per_minute=10_000)
    reserve(api_key, license)

    with pytest.raises(LimitExceeded) as refused:
        reserve(api_key, license, tokens=500)

    assert refused.value.code == "key_budget_daily"
    usage = budget_usage(api_key=api_key, license=license)
    assert usage.key_day_usd == usage.key_month_usd == usage.license_month_usd == CALL
    assert usage.key_minute_tokens == 100


# -- settle and release ---------------------------------------------------------------------------


def test_settle_replaces_the_reservation_by_the_real_spend_exactly(license):
    api_key = key_of(license, spend_limit_daily_usd=Decimal("1"), tokens_per_minute=5000)
    first = reserve(api_key, license, cost=Decimal("0.3"), tokens=2000)
    second = reserve(api_key, license, cost=Decimal("0.3"), tokens=2000)

    assert budget_settle(first, cost_usd=Decimal("0.000123457"), tokens=321) is True
    assert budget_release(second) is True

    usage = budget_usage(api_key=api_key, license=license)
    assert usage.key_day_usd == Decimal("0.000123457")
    assert usage.key_month_usd == Decimal("0.000123457")
    assert usage.license_month_usd == Decimal("0.000123457")
    assert usage.key_minute_tokens == 321
    # settling or releasing again changes nothing
    assert budget_settle(first, cost_usd=Decimal("5"), tokens=9) is False
    assert budget_release(first) is False
    assert budget_usage(api_key=api_key, license=license).key_day_usd == Decimal("0.000123457")


def test_sums_of_many_small_costs_stay_exact(license):
    api_key = key_of(license)
    for _ in range(30):
        budget_settle(reserve(api_key, license, cost=Decimal("0.01")), cost_usd=Decimal("0.000000003"), tokens=1)
    assert budget_usage(api_key=api_key, license=license).key_day_usd == Decimal("0.00000009")


def test_a_budget_spent_by_settled_calls_refuses_the_next(license):
    api_key = key_of(license, spend_limit_daily_usd=Decimal("0.05"))
    for _ in range(4):
        budget_settle(reserve(api_key, license, cost=Decimal("0.0125")), cost_usd=Decimal("0.0125"), tokens=5)
    with pytest.raises(LimitExceeded) as refused:
        reserve(api_key, license, cost=Decimal("0.0000001"))
    assert refused.value.details["used"] == "0.05"


# -- windows -------------------------------------------------------------------------------------


def test_the_day_and_month_roll_over(license):
    api_key = key_of(license, spend_limit_daily_usd=CALL, spend_limit_monthly_usd=CALL * 2)
    with time_machine.travel(datetime(2027, 1, 30, 23, 59, tzinfo=UTC), tick=False):
        spend(api_key, license)
        with pytest.raises(LimitExceeded) as refused:
            spend(api_key, license)
        assert refused.value.code == "key_budget_daily"
        assert refused.value.details["reset_at"] == "2027-01-31T00:00:00+00:00"
        assert refused.value.retry_after == 60
    with time_machine.travel(datetime(2027, 1, 31, 0, 0, 1, tzinfo=UTC), tick=False):
        spend(api_key, license)  # a new day
        with pytest.raises(LimitExceeded) as refused:
            spend(api_key, license)
        assert refused.value.code == "key_budget_daily"
    with time_machine.travel(datetime(2027, 2, 1, 0, 0, 1, tzinfo=UTC), tick=False):
        spend(api_key, license)  # a new day and a new month
        with time_machine.travel(datetime(2027, 2, 2, 9, tzinfo=UTC), tick=False):
            spend(api_key, license)
            with time_machine.travel(datetime(2027, 2, 3, 9, tzinfo=UTC), tick=False):
                with pytest.raises(LimitExceeded) as refused:
                    spend(api_key, license)
    assert refused.value.code == "key_budget_monthly"
    assert refused.value.details["reset_at"] == "2027-03-01T00:00:00+00:00"


def test_the_license_budget_starts_from_the_month_cost_in_postgresql(license):
    license.custom_limits = {"ai_usd_per_month": "10"}
    license.save()
    with time_machine.travel(datetime(2027, 3, 15, 12, tzinfo=UTC), tick=False):
        LicenseUsageLogFactory(
            license=license,
            organization=license.organization,
            period_start=datetime(2027, 3, 1).date(),
            period_end=datetime(2027, 3, 31).date(),
            calculated_cost=Decimal("9.99"),
        )
        api_key = key_of(license)
        reserve(api_key, license, cost=Decimal("0.01"))
        with pytest.raises(LimitExceeded) as refused:
            reserve(api_key, license, cost=Decimal("0.01"))
    assert refused.value.code == "license_budget_monthly"
    assert refused.value.details["used"] == "10"


def test_the_tokens_per_minute_roll_over_with_the_minute(license):
    api_key = key_of(license, tokens_per_minute=100)
    with time_machine.travel(datetime(2027, 1, 5, 10, 0, 59, tzinfo=UTC), tick=False):
        reserve(api_key, license, tokens=100)
        with pytest.raises(LimitExceeded) as refused:
            reserve(api_key, license, tokens=1)
        assert refused.value.retry_after == 1
    with time_machine.travel(datetime(2027, 1, 5, 10, 1, 0, tzinfo=UTC), tick=False):
        reserve(api_key, license, tokens=100)


# -- crash safety --------------------------------------------------------------------------------


@override_settings(AI_BUDGET_RESERVATION_TTL_SECONDS=60)
def test_an_abandoned_reservation_is_given_back_after_its_ttl(license):
    api_key = key_of(license, spend_limit_daily_usd=CALL, max_requests_in_flight=1)
    start = datetime(2027, 4, 1, 8, tzinfo=UTC)
    with time_machine.travel(start, tick=False):
        abandoned = reserve(api_key, license)  # its process dies: never settled
    with time_machine.travel(start + timedelta(seconds=59), tick=False):
        with pytest.raises(LimitExceeded):
            reserve(api_key, license)
    with time_machine.travel(start + timedelta(seconds=61), tick=False):
        usage = budget_usage(api_key=api_key, license=license)
        assert usage.key_day_usd == 0
        assert usage.license_month_usd == 0
        taken = reserve(api_key, license)
        # the dead process's late settle adds what it really spent, once
        assert budget_settle(abandoned, cost_usd=Decimal("0.001"), tokens=5) is True
        assert budget_usage(api_key=api_key, license=license).key_day_usd == CALL + Decimal("0.001")
        assert budget_release(taken) is True
        assert budget_usage(api_key=api_key, license=license).key_day_usd == Decimal("0.001")


@override_settings(AI_BUDGET_RESERVATION_TTL_SECONDS=60)
def test_a_renewed_reservation_outlives_its_first_deadline(license):
    api_key = key_of(license, max_requests_in_flight=1)
    start = datetime(2027, 4, 1, 8, tzinfo=UTC)
    with time_machine.travel(start, tick=False):
        streaming = reserve(api_key, license)
    with time_machine.travel(start + timedelta(seconds=50), tick=False):
        assert budget_renew(streaming) is True
    with time_machine.travel(start + timedelta(seconds=100), tick=False):
        with pytest.raises(LimitExceeded) as refused:
            reserve(api_key, license)
        assert refused.value.code == "key_in_flight"
        assert budget_usage(api_key=api_key, license=license).key_day_usd == CALL


# -- models, no Redis, headers ---------------------------------------------------------------------


def test_a_key_limited_to_some_models_is_refused_the_others(license):
    api_key = key_of(license, allowed_models=["gpt-4o-mini"])
    budget_check_model(api_key, "gpt-4o-mini")
    with pytest.raises(Forbidden) as refused:
        reserve(api_key, license, model="claude-3-5-haiku")
    assert refused.value.code == "model_not_allowed"
    assert refused.value.status_code == 403
    assert budget_usage(api_key=api_key, license=license).key_day_usd == 0
    budget_check_model(key_of(license, allowed_models=[]), "anything")


def test_without_redis_only_unlimited_keys_go_through(license, settings):
    settings.REDIS_URL = ""
    assert reserve(key_of(license), license) is None
    with pytest.raises(BudgetsUnavailable):
        reserve(key_of(license, tokens_per_minute=10), license)


def test_rate_limit_headers_count_the_license_month_and_the_key_minute(license):
    api_key = key_of(license, tokens_per_minute=1000)
    month = MonthUsage(requests=7, tokens=5000)  # as the license's count of this call left it
    with time_machine.travel(datetime(2027, 5, 31, 23, 59, 30, tzinfo=UTC), tick=False):
        reserve(api_key, license, tokens=100)
        budget = reserve(api_key, license, tokens=150)
        headers = rate_limit_headers(api_key=api_key, license=license, month=month, budget=budget)
    assert headers == {
        "x-ratelimit-limit-requests": "1000",
        "x-ratelimit-remaining-requests": "993",
        "x-ratelimit-reset-requests": "30s",
        "x-ratelimit-limit-tokens": "1000",
        "x-ratelimit-remaining-tokens": "750",
        "x-ratelimit-reset-tokens": "30s",
    }
    other = key_of(license)
    with time_machine.travel(datetime(2027, 5, 30, 23, 0, 0, tzinfo=UTC), tick=False):
        budget = reserve(other, license)
        headers = rate_limit_headers(api_key=other, license=license, month=month, budget=budget)
    assert headers["x-ratelimit-remaining-tokens"] == "995000"
    assert headers["x-ratelimit-reset-tokens"] == "25h0m0s"
    assert rate_limit_headers(api_key=other, license=license, month=None, budget=None) == {}  # no Redis


def test_the_worst_case_prices_every_input_token_uncached_and_every_output_token():
    model = AIModelFactory.build(
        cost_per_1k_input=Decimal("0.150000"),
        cost_per_1k_output=Decimal("0.600000"),
        cost_per_1k_cached_input=Decimal("0.075000"),
    )
    worst = budget_worst_case_usd(model=model, input_tokens=1234, max_output_tokens=1024)
    assert worst == Decimal("0.7995")  # 1,234 × 0.15 / 1k + 1,024 × 0.6 / 1k


def test_large_spends_are_reported_exactly(license):
    license.custom_limits = {"ai_usd_per_month": "2000000"}
    license.save()
    api_key = key_of(license)
    spend(api_key, license, cost=Decimal("1999999.999999999"))
    with pytest.raises(LimitExceeded) as refused:
        reserve(api_key, license, cost=Decimal("0.000000002"))
    assert refused.value.details["used"] == "1999999.999999999"
    reserve(api_key, license, cost=Decimal("0.000000001"))
