"""The key pool router end to end: the official SDKs against the local fake provider."""

import multiprocessing
import time
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone

from aimesh import providers
from aimesh.models import AIApiKey, Provider
from aimesh.providers import run_sync
from aimesh.routing import (
    AIUnavailable,
    ProviderRejected,
    keys_probe_unhealthy,
    keys_usage_flush,
    route_chat,
    route_chat_stream,
)
from aimesh.testing import ai_model, pool_key
from celaest.ratelimit import pace_hit, rate_limit_hit

pytestmark = pytest.mark.django_db


def _request(model):
    return providers.ChatRequest(model_id=model.model_id, messages=[{"role": "user", "content": "Hello there"}])


def _route(models):
    return run_sync(route_chat, models=models, request_for=_request)


def test_lowest_priority_number_is_tried_first_then_least_recently_used(provider):
    model = ai_model()
    first = pool_key(provider, "sk-a", priority=10)
    pool_key(provider, "sk-b", priority=20)
    answer = _route([model])
    assert answer.key == first
    assert provider.hits == {"sk-a": 1}
    assert answer.result.text and answer.result.usage.tokens_input > 0

    pool_key(provider, "sk-c", priority=10)  # same priority, never used: least recently used
    assert _route([model]).key.key_name == "sk-c"
    assert _route([model]).key.key_name == "sk-a"
    first.refresh_from_db()
    assert first.usage_count == 1 and first.last_used_at is not None  # a key's first use each minute is written
    assert keys_usage_flush() == 1  # the periodic job writes the rest: sk-a's second use
    first.refresh_from_db()
    assert first.usage_count == 2


@pytest.mark.parametrize("failing", ["sk-fail-429-r7", "sk-fail-500", "sk-fail-529"])
def test_a_failing_key_cools_down_and_the_next_key_answers(provider, failing):
    model = ai_model()
    bad = pool_key(provider, failing, priority=1)
    good = pool_key(provider, "sk-good", priority=2)
    before = timezone.now()
    answer = _route([model])
    assert answer.key == good and answer.attempts == 2
    bad.refresh_from_db()
    assert bad.consecutive_failures == 1 and bad.is_healthy
    assert bad.cooldown_until > before
    if "429" in failing:  # Retry-After honoured
        assert bad.cooldown_until >= before + timedelta(seconds=7)
    assert failing not in bad.last_error
    # While it cools down it is not tried again.
    provider.hits.clear()
    _route([model])
    assert provider.hits == {"sk-good": 1}


def test_anthropic_overloaded_529_fails_over(provider):
    model = ai_model("claude-haiku-4-5", provider=Provider.ANTHROPIC)
    pool_key(provider, "sk-ant-fail-529", vendor=Provider.ANTHROPIC, priority=1)
    good = pool_key(provider, "sk-ant-ok", vendor=Provider.ANTHROPIC, priority=2)
    answer = _route([model])
    assert answer.key == good
    assert answer.result.usage.tokens_output > 0


def test_cooldown_ends_and_the_key_is_used_again(provider):
    model = ai_model()
    key = pool_key(provider, "sk-flaky", priority=1)
    pool_key(provider, "sk-backup", priority=2)
    provider.set_failure("sk-flaky", "fail-429-r1")
    assert _route([model]).key.key_name == "sk-backup"
    provider.set_failure("sk-flaky", "")
    AIApiKey.objects.filter(pk=key.pk).update(cooldown_until=timezone.now() - timedelta(seconds=1))
    answer = _route([model])
    assert answer.key == key
    key.refresh_from_db()
    assert key.consecutive_failures == 0


def test_consecutive_failures_make_a_key_unhealthy_and_the_probe_restores_it(provider, settings):
    settings.AI_KEY_FAILURES_UNHEALTHY = 3
    model = ai_model()
    key = pool_key(provider, "sk-down", priority=1)
    provider.set_failure("sk-down", "fail-500")
    for _ in range(3):
        with pytest.raises(AIUnavailable):
            _route([model])
        AIApiKey.objects.filter(pk=key.pk).update(cooldown_until=None)
    key.refresh_from_db()
    assert not key.is_healthy and key.consecutive_failures == 3
    # The probe keeps it out while it still fails, and restores it once it answers.
    assert keys_probe_unhealthy() == {"restored": [], "still_failing": [key.pk]}
    provider.set_failure("sk-down", "")
    assert keys_probe_unhealthy() == {"restored": [key.pk], "still_failing": []}
    key.refresh_from_db()
    assert key.is_healthy and key.consecutive_failures == 0 and key.cooldown_until is None
    assert _route([model]).key == key


def test_a_rejected_key_is_unhealthy_at_once(provider):
    model = ai_model()
    bad = pool_key(provider, "sk-fail-401", priority=1)
    pool_key(provider, "sk-fine", priority=2)
    assert _route([model]).key.key_name == "sk-fine"
    bad.refresh_from_db()
    assert not bad.is_healthy


def test_a_bad_request_is_not_retried(provider):
    model = ai_model()
    pool_key(provider, "sk-fail-400", priority=1)
    pool_key(provider, "sk-other", priority=2)
    with pytest.raises(ProviderRejected):
        _route([model])
    assert provider.hits == {"sk-fail-400": 1}


def test_a_hanging_provider_times_out_and_the_next_key_answers(provider):
    model = ai_model()
    pool_key(provider, "sk-hang", priority=1)
    pool_key(provider, "sk-quick", priority=2)

    def short_timeout(model):
        return providers.ChatRequest(model_id=model.model_id, messages=[{"role": "user", "content": "hi"}], timeout=0.5)

    started = time.monotonic()
    answer = run_sync(route_chat, models=[model], request_for=short_timeout)
    assert answer.key.key_name == "sk-quick"
    assert time.monotonic() - started < 4
    assert AIApiKey.objects.get(key_name="sk-hang").last_error.startswith("timeout")


def test_the_fallback_model_answers_when_the_first_has_no_working_key(provider):
    first = ai_model("gpt-4o")
    fallback = ai_model("claude-haiku-4-5", provider=Provider.ANTHROPIC, is_default=False)
    pool_key(provider, "sk-fail-529", priority=1)
    pool_key(provider, "sk-ant-fallback", vendor=Provider.ANTHROPIC)
    answer = _route([first, fallback])
    assert answer.model == fallback and answer.attempts == 2


def test_no_usable_key_is_a_503(provider):
    model = ai_model()
    pool_key(provider, "sk-off", is_active=False)
    with pytest.raises(AIUnavailable) as raised:
        _route([model])
    assert raised.value.status_code == 503


def test_a_key_over_its_rpm_is_skipped(provider):
    model = ai_model()
    # 120 a minute: a burst of one second's worth (2), then one every half second
    pool_key(provider, "sk-small", priority=1, rate_limit_rpm=120)
    pool_key(provider, "sk-big", priority=2, rate_limit_rpm=6000)
    names = [_route([model]).key.key_name for _ in range(4)]
    assert names.count("sk-small") == 2 and names.count("sk-big") == 2


def _pace(key_name: str, count: int, queue) -> None:
    queue.put(sum(pace_hit(key=key_name, per_minute=6) is None for _ in range(count)))


def test_a_key_budget_is_spent_evenly_and_shared_between_processes():
    """Six a minute is one call every ten seconds (a fixed window would let six through at once,
    and twelve around a minute's boundary): four processes trying 30 times each get exactly one."""
    connections.close_all()
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    workers = [context.Process(target=_pace, args=("ai-key:paced-test", 30, queue)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert sum(queue.get(timeout=5) for _ in workers) == 1
    wait = pace_hit(key="ai-key:paced-test", per_minute=6)
    assert wait is not None and 5 < wait <= 10


def _hit_budget(key_name: str, count: int, queue) -> None:
    allowed = sum(rate_limit_hit(key=key_name, limit=50).allowed for _ in range(count))
    queue.put(allowed)


def test_the_rpm_budget_is_shared_between_processes():
    """Four processes hitting one key's budget: exactly the limit is let through."""
    connections.close_all()
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    workers = [context.Process(target=_hit_budget, args=("ai-key:shared-test", 30, queue)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert sum(queue.get(timeout=5) for _ in workers) == 50


async def _streamed(model):
    """Route a stream and read it to its end, on one event loop (as a server does)."""
    answer = await route_chat_stream(models=[model], request_for=_request)
    return answer, "".join([delta.get("content", "") async for delta in answer.stream])


def test_streaming_yields_the_answer_and_the_usage(provider):
    model = ai_model()
    pool_key(provider, "sk-fail-429", priority=1)
    pool_key(provider, "sk-stream", priority=2)
    answer, text = run_sync(_streamed, model)
    assert answer.key.key_name == "sk-stream"
    assert text == answer.stream_state.text and len(text) > 10
    assert answer.stream_state.usage.tokens_output > 0


def test_anthropic_streaming_usage(provider):
    model = ai_model("claude-haiku-4-5", provider=Provider.ANTHROPIC)
    pool_key(provider, "sk-ant-s", vendor=Provider.ANTHROPIC)
    answer, text = run_sync(_streamed, model)
    assert text and answer.stream_state.usage.tokens_input > 0 and answer.stream_state.usage.tokens_output > 0


def test_cached_tokens_are_part_of_the_input_for_both_protocols(provider):
    long_prompt = "word " * 1200  # 1500 tokens: the fake caches whole 128-token blocks
    request = providers.ChatRequest(model_id="m", messages=[{"role": "user", "content": long_prompt}])
    openai_usage = run_sync(
        providers.chat, provider=Provider.OPENAI, api_key="sk-c", base_url=provider.url, request=request
    ).usage
    anthropic_usage = run_sync(
        providers.chat, provider=Provider.ANTHROPIC, api_key="sk-ant-c", base_url=provider.url, request=request
    ).usage
    assert openai_usage.tokens_input == anthropic_usage.tokens_input == 1500
    assert openai_usage.tokens_cached == anthropic_usage.tokens_cached == 1408


def test_json_mode_is_parsed(provider):
    request = providers.ChatRequest(model_id="m", messages=[{"role": "user", "content": "x"}], json_mode=True)
    for vendor in (Provider.OPENAI, Provider.ANTHROPIC):
        result = run_sync(providers.chat, provider=vendor, api_key="sk-j", base_url=provider.url, request=request)
        assert isinstance(result.output_json, dict) and "answer" in result.output_json
