"""A model's fallbacks on the gateway: tried in order when no key of the model asked for can answer
(rate limits, outages), skipped when they cannot honour the call; the answer names the model
that served it, and the task records it."""

import openai
import pytest

from aimesh.models import AIModelFallback, Provider
from aimesh.testing import ai_model, pool_key
from operations.models import ProcessedTask
from settings_app.services.api_keys import api_key_create
from tests import factories as f

pytestmark = pytest.mark.django_db(transaction=True)

WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}


@pytest.fixture
def gateway(asgi_server, provider):
    claude = ai_model("claude-haiku-4-5", provider=Provider.ANTHROPIC, capabilities=["chat", "tools"])
    plain = ai_model("fake-small", is_default=False, capabilities=["chat"])
    capable = ai_model("gpt-4o-mini", is_default=False, capabilities=["chat", "tools", "embeddings"])
    AIModelFallback.objects.create(model=claude, fallback=plain, position=0)
    AIModelFallback.objects.create(model=claude, fallback=capable, position=1)
    pool_key(provider, "sk-fail-429-fallbacks", vendor=Provider.ANTHROPIC)  # Anthropic is rate limited
    pool_key(provider, "sk-fallbacks-openai")
    license = f.LicenseFactory(plan=f.SubscriptionPlanFactory(limits={"ai_requests_per_month": 20}))
    user = f.UserFactory(organization=license.organization)
    raw = api_key_create(user=user, name="fallbacks", scopes=["tasks:write"]).raw_key
    return openai.OpenAI(api_key=raw, base_url=f"{asgi_server.url}/v1", max_retries=0, timeout=20)


def test_the_first_fallback_answers_when_the_models_keys_are_rate_limited(gateway):
    completion = gateway.chat.completions.create(
        model="claude-haiku-4-5", messages=[{"role": "user", "content": "Anyone there?"}]
    )
    assert completion.model == "fake-small" and completion.choices[0].message.content
    task = ProcessedTask.objects.get()
    assert task.status == "completed" and task.model.model_id == "fake-small" and task.attempts == 2


def test_a_fallback_that_cannot_take_the_call_is_skipped(gateway):
    completion = gateway.chat.completions.create(
        model="claude-haiku-4-5", messages=[{"role": "user", "content": "Weather?"}], tools=[WEATHER]
    )
    assert completion.model == "gpt-4o-mini"  # fake-small has no tools
    assert completion.choices[0].message.tool_calls[0].function.name == "get_weather"


def test_a_stream_falls_back_before_its_first_event(gateway):
    stream = gateway.chat.completions.create(
        model="claude-haiku-4-5", messages=[{"role": "user", "content": "Stream it"}], stream=True
    )
    chunks = list(stream)
    assert {chunk.model for chunk in chunks} == {"fake-small"}
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert ProcessedTask.objects.get().model.model_id == "fake-small"


def test_without_a_fallback_that_can_answer_the_call_fails_and_is_not_counted_twice(gateway):
    AIModelFallback.objects.all().delete()
    with pytest.raises(openai.APIStatusError) as raised:
        gateway.chat.completions.create(model="claude-haiku-4-5", messages=[{"role": "user", "content": "hi"}])
    assert raised.value.status_code == 503
    assert ProcessedTask.objects.get().status == "failed"
