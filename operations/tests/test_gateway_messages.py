"""The Anthropic Messages API at ``/v1/messages``, driven by the official ``anthropic`` client over
the ASGI server: every model of the mesh answers it (Anthropic's translated back and forth,
OpenAI-compatible ones through the gateway's own request), streams as the SDK accumulates them,
tools and images included, errors in Anthropic's shape."""

import base64

import anthropic
import openai
import pytest

from aimesh.models import Provider
from aimesh.testing import ai_model, pool_key
from licensing.models import License
from operations.models import ProcessedTask
from settings_app.services.api_keys import api_key_create
from tests import factories as f

pytestmark = pytest.mark.django_db(transaction=True)

CAPABLE = ["chat", "json", "vision", "tools"]
MODELS = ["claude-haiku-4-5", "gpt-4o-mini"]
WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n tiny").decode()


@pytest.fixture
def gateway(asgi_server, provider):
    ai_model("gpt-4o-mini", capabilities=CAPABLE)
    ai_model("claude-haiku-4-5", provider=Provider.ANTHROPIC, is_default=False, capabilities=CAPABLE)
    pool_key(provider, "sk-msg-openai")
    pool_key(provider, "sk-msg-ant", vendor=Provider.ANTHROPIC)
    plan = f.SubscriptionPlanFactory(limits={"ai_requests_per_month": 50, "tokens_per_month": None})
    license = f.LicenseFactory(plan=plan)
    user = f.UserFactory(organization=license.organization)
    raw = api_key_create(user=user, name="messages", scopes=["tasks:write"]).raw_key
    client = anthropic.Anthropic(api_key=raw, base_url=asgi_server.url, max_retries=0, timeout=20)
    return {"client": client, "license": license, "provider": provider, "url": asgi_server.url}


def _requests_used(gateway) -> int:
    return License.objects.get(pk=gateway["license"].pk).ai_requests_used


@pytest.mark.parametrize("model", MODELS)
def test_the_anthropic_client_gets_a_message_and_the_task_is_recorded(gateway, model):
    message = gateway["client"].messages.create(
        model=model,
        max_tokens=200,
        system=[{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        messages=[{"role": "user", "content": "Hello from the Anthropic SDK"}],
    )
    assert message.type == "message" and message.role == "assistant" and message.model == model
    assert message.content[0].type == "text" and message.content[0].text
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    task = ProcessedTask.objects.get()
    assert task.status == "completed" and task.input_variables["gateway"] == "messages"
    assert task.output_text == message.content[0].text
    assert task.tokens_output == message.usage.output_tokens
    assert _requests_used(gateway) == 1
    sent = gateway["provider"].bodies[-1]
    if model == "gpt-4o-mini":
        assert sent["messages"][0] == {"role": "system", "content": "Be brief."}
    else:
        assert sent["system"] == "Be brief."


@pytest.mark.parametrize("model", MODELS)
def test_tools_round_trip_through_the_messages_api(gateway, model):
    client = gateway["client"]
    first = client.messages.create(
        model=model,
        max_tokens=200,
        tools=[WEATHER],
        tool_choice={"type": "tool", "name": "get_weather"},
        messages=[{"role": "user", "content": "Weather in Rome?"}],
    )
    assert first.stop_reason == "tool_use"
    (use,) = [block for block in first.content if block.type == "tool_use"]
    assert use.name == "get_weather" and use.input == {"city": "Weather in Rome?"} and use.id
    second = client.messages.create(
        model=model,
        max_tokens=200,
        tools=[WEATHER],
        messages=[
            {"role": "user", "content": "Weather in Rome?"},
            {"role": "assistant", "content": [block.model_dump() for block in first.content]},
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": use.id, "content": [{"type": "text", "text": "Hot"}]}
                ],
            },
        ],
    )
    assert second.content[0].text == "Tool said: Hot" and second.stop_reason == "end_turn"
    sent = gateway["provider"].bodies[-1]
    if model == "gpt-4o-mini":
        assert sent["messages"][-1] == {"role": "tool", "tool_call_id": use.id, "content": "Hot"}
        assert sent["tools"][0]["function"]["parameters"] == WEATHER["input_schema"]
    else:
        assert sent["messages"][-1]["content"] == [{"type": "tool_result", "tool_use_id": use.id, "content": "Hot"}]


@pytest.mark.parametrize("model", MODELS)
def test_a_streamed_message_accumulates_in_the_sdk_with_text_and_tool_input(gateway, model):
    with gateway["client"].messages.stream(
        model=model, max_tokens=200, messages=[{"role": "user", "content": "Stream a greeting"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text and final.content[0].text == text and final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 0
    assert ProcessedTask.objects.get().output_text == text

    with gateway["client"].messages.stream(
        model=model,
        max_tokens=200,
        tools=[WEATHER],
        tool_choice={"type": "any"},
        messages=[{"role": "user", "content": "Lima"}],
    ) as stream:
        final = stream.get_final_message()
    (use,) = [block for block in final.content if block.type == "tool_use"]
    assert use.name == "get_weather" and use.input == {"city": "Lima"}
    assert final.stop_reason == "tool_use"
    assert _requests_used(gateway) == 2


def test_an_image_reaches_an_openai_model_as_a_data_url(gateway):
    message = gateway["client"].messages.create(
        model="gpt-4o-mini",
        max_tokens=100,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
                    {"type": "text", "text": "What is this?"},
                ],
            }
        ],
    )
    assert message.content[0].text.startswith("I see 1 image(s).")
    part = gateway["provider"].bodies[-1]["messages"][0]["content"][0]
    assert part == {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}", "detail": "auto"}}


@pytest.mark.parametrize(
    ("arguments", "code"),
    [
        ({"extra_body": {"top_k": 5}}, "unsupported_parameter"),
        ({"thinking": {"type": "enabled", "budget_tokens": 1024}}, "unsupported_parameter"),
        ({"messages": [{"role": "system", "content": "x"}]}, "invalid"),
        ({"messages": [{"role": "user", "content": [{"type": "document", "source": {}}]}]}, "invalid"),
        ({"messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "file"}}]}]}, "invalid"),
        ({"tool_choice": {"type": "sometimes"}}, "invalid"),
        ({"output_config": {"effort": "high"}}, "invalid"),
        ({"model": "no-such-model"}, None),
    ],
)
def test_bad_requests_are_anthropic_errors_and_nothing_is_counted(gateway, arguments, code):
    arguments = {
        "model": "claude-haiku-4-5",
        "max_tokens": 50,
        "messages": [{"role": "user", "content": "hi"}],
    } | arguments
    with pytest.raises(anthropic.APIStatusError) as raised:
        gateway["client"].messages.create(**arguments)
    assert 400 <= raised.value.status_code < 500
    body = raised.value.body
    assert body["type"] == "error" and body["error"]["type"].endswith("_error") and body["error"]["message"]
    if code:
        assert body["error"]["code"] == code
    assert not ProcessedTask.objects.exists() and _requests_used(gateway) == 0


def test_a_wrong_key_is_an_authentication_error(gateway):
    client = anthropic.Anthropic(api_key="cel_not-a-key", base_url=gateway["url"], max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as raised:
        client.messages.create(model="claude-haiku-4-5", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
    assert raised.value.body["error"]["type"] == "authentication_error"
    assert not ProcessedTask.objects.exists()


def test_unknown_gateway_paths_are_json_404s_each_sdk_parses(gateway, asgi_server):
    with pytest.raises(anthropic.NotFoundError) as raised:
        gateway["client"].messages.count_tokens(model="claude-haiku-4-5", messages=[{"role": "user", "content": "x"}])
    assert raised.value.body["type"] == "error" and raised.value.body["error"]["type"] == "not_found_error"
    client = openai.OpenAI(api_key="cel_any", base_url=f"{asgi_server.url}/v1", max_retries=0)
    with pytest.raises(openai.NotFoundError) as missing:
        client.files.list()
    assert missing.value.code == "not_found" and missing.value.type == "not_found_error"
