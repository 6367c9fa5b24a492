"""Keys' and licenses' budgets on the gateway, end to end through the official ``openai`` client
and the ASGI server: concurrent calls spend exactly up to a budget and are refused (429 naming the
limit) before any provider call, a model a key may not use is a 403, the answer carries OpenAI's
``x-ratelimit-*`` headers, and the license a key is bound to is the one that pays."""

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import openai
import pytest

from aimesh.testing import ai_model, pool_key
from licensing.models import License
from operations.ai_licenses import api_key_license_bind
from operations.budgets import budget_worst_case_usd
from operations.models import ProcessedTask
from settings_app.models import UserApiKey
from settings_app.services.api_keys import api_key_create
from tests import factories as f

pytestmark = pytest.mark.django_db(transaction=True)

PROMPT = [{"role": "user", "content": "Say something"}]  # 4 tokens by the gateway's estimate
MAX_TOKENS = 50


@pytest.fixture
def gateway(asgi_server, provider):
    model = ai_model("gpt-4o-mini")
    ai_model("gpt-4o", is_default=False)
    pool_key(provider, "sk-budgets")
    license = f.LicenseFactory(plan=f.SubscriptionPlanFactory(limits={"ai_requests_per_month": 500}))
    user = f.UserFactory(organization=license.organization)
    created = api_key_create(user=user, name="budgets", scopes=["tasks:write"])
    client = openai.OpenAI(api_key=created.raw_key, base_url=f"{asgi_server.url}/v1", max_retries=0, timeout=30)
    return {"client": client, "license": license, "key": created.api_key, "provider": provider, "model": model}


def _limit(gateway, **fields):
    UserApiKey.objects.filter(pk=gateway["key"].pk).update(**fields)


def _call(gateway, model="gpt-4o-mini"):
    try:
        gateway["client"].chat.completions.create(model=model, messages=PROMPT, max_tokens=MAX_TOKENS)
        return "ok"
    except openai.RateLimitError as error:
        return error.code
    except openai.PermissionDeniedError as error:
        return error.code


def _fifty_at_once(gateway) -> list[str]:
    gateway["provider"].set_latency(800)  # every call reserves before any settles
    try:
        with ThreadPoolExecutor(50) as pool:
            return list(pool.map(lambda _: _call(gateway), range(50)))
    finally:
        gateway["provider"].set_latency(0)


def test_fifty_concurrent_calls_take_exactly_a_keys_daily_budget(gateway):
    worst = budget_worst_case_usd(model=gateway["model"], input_tokens=4, max_output_tokens=MAX_TOKENS)
    _limit(gateway, spend_limit_daily_usd=worst * 7)
    hits_before = sum(gateway["provider"].hits.values())
    outcomes = _fifty_at_once(gateway)
    assert outcomes.count("ok") == 7 and outcomes.count("key_budget_daily") == 43
    assert sum(gateway["provider"].hits.values()) - hits_before == 7  # refused before any provider call
    spent = sum(task.cost_usd for task in ProcessedTask.objects.filter(status="completed"))
    assert ProcessedTask.objects.count() == 7 and spent <= worst * 7
    assert License.objects.get(pk=gateway["license"].pk).ai_requests_used == 7


def test_a_license_budget_holds_across_the_calls_of_its_keys(gateway):
    worst = budget_worst_case_usd(model=gateway["model"], input_tokens=4, max_output_tokens=MAX_TOKENS)
    License.objects.filter(pk=gateway["license"].pk).update(custom_limits={"ai_usd_per_month": str(worst * 5)})
    outcomes = _fifty_at_once(gateway)
    assert outcomes.count("ok") == 5 and outcomes.count("license_budget_monthly") == 45


def test_requests_in_flight_are_capped_per_key(gateway):
    _limit(gateway, max_requests_in_flight=3)
    outcomes = _fifty_at_once(gateway)
    assert outcomes.count("ok") == 3 and outcomes.count("key_in_flight") == 47
    assert _call(gateway) == "ok"  # the slots came back when the calls ended


def test_a_model_the_key_may_not_use_is_a_403_and_nothing_is_counted(gateway):
    _limit(gateway, allowed_models=["gpt-4o-mini"])
    assert _call(gateway, model="gpt-4o") == "model_not_allowed"
    assert not ProcessedTask.objects.exists()
    assert _call(gateway, model="gpt-4o-mini") == "ok"


def test_answers_carry_openais_rate_limit_headers(gateway):
    _limit(gateway, tokens_per_minute=10_000)
    raw = gateway["client"].chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=PROMPT, max_tokens=MAX_TOKENS
    )
    assert raw.headers["x-ratelimit-limit-requests"] == "500"
    assert raw.headers["x-ratelimit-remaining-requests"] == "499"
    assert raw.headers["x-ratelimit-limit-tokens"] == "10000"
    assert int(raw.headers["x-ratelimit-remaining-tokens"]) == 10_000 - 4 - MAX_TOKENS  # this call's reservation
    assert raw.headers["x-ratelimit-reset-tokens"].endswith("s")
    again = gateway["client"].chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=PROMPT, max_tokens=MAX_TOKENS
    )
    assert again.headers["x-ratelimit-remaining-requests"] == "498"  # counted by the reservation itself


def test_the_license_a_key_is_bound_to_pays_even_beside_another_paid_one(gateway):
    license = gateway["license"]
    other = f.LicenseFactory(organization=license.organization, plan=license.plan)
    api_key_license_bind(api_key=gateway["key"], license=other)
    assert _call(gateway) == "ok"
    task = ProcessedTask.objects.get()
    assert task.license_id == other.pk
    assert License.objects.get(pk=other.pk).ai_requests_used == 1
    assert License.objects.get(pk=license.pk).ai_requests_used == 0
    assert task.cost_usd > Decimal(0)
