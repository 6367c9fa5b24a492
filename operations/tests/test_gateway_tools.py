"""Chat completions complete: tools, images, JSON schemas and the sampling options, through the
official ``openai`` client over the ASGI server, to an OpenAI-compatible model (passed through)
and to an Anthropic model (translated both ways, streams included); what a model cannot honour
is a 400 in OpenAI's error shape before anything is counted or called."""

import base64
import json

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
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city"],
        },
    },
}
CLOCK = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}
PIXEL = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n tiny").decode()
MODELS = ["gpt-4o-mini", "claude-haiku-4-5"]


@pytest.fixture
def gateway(asgi_server, provider):
    ai_model("gpt-4o-mini", capabilities=CAPABLE)
    ai_model("claude-haiku-4-5", provider=Provider.ANTHROPIC, is_default=False, capabilities=CAPABLE)
    ai_model("text-only", is_default=False, capabilities=["chat"])
    pool_key(provider, "sk-tools-openai")
    pool_key(provider, "sk-tools-ant", vendor=Provider.ANTHROPIC)
    plan = f.SubscriptionPlanFactory(limits={"ai_requests_per_month": 50, "tokens_per_month": None})
    license = f.LicenseFactory(plan=plan)
    user = f.UserFactory(organization=license.organization)
    raw = api_key_create(user=user, name="tools", scopes=["tasks:write"]).raw_key
    client = openai.OpenAI(api_key=raw, base_url=f"{asgi_server.url}/v1", max_retries=0, timeout=20)
    return {"client": client, "license": license, "provider": provider}


def _sent(gateway) -> dict:
    """The body the provider got last."""
    return gateway["provider"].bodies[-1]


def _requests_used(gateway) -> int:
    return License.objects.get(pk=gateway["license"].pk).ai_requests_used


@pytest.mark.parametrize("model", MODELS)
def test_a_tool_call_comes_back_as_openai_tool_calls_and_is_recorded(gateway, model):
    completion = gateway["client"].chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "Weather in Lisbon?"}],
        tools=[CLOCK, WEATHER],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert call.type == "function" and call.function.name == "get_weather" and call.id
    assert json.loads(call.function.arguments) == {"city": "Weather in Lisbon?", "days": 1}
    task = ProcessedTask.objects.get()
    assert task.status == "completed"
    assert task.output_json["tool_calls"][0]["function"]["name"] == "get_weather"
    sent = _sent(gateway)
    if model == "claude-haiku-4-5":
        assert sent["tools"][1] == {
            "name": "get_weather",
            "description": "The weather in a city.",
            "input_schema": WEATHER["function"]["parameters"],
        }
        assert sent["tool_choice"] == {"type": "tool", "name": "get_weather"}
    else:
        assert sent["tools"] == [CLOCK, WEATHER]
        assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}


@pytest.mark.parametrize("model", MODELS)
def test_tool_results_go_back_to_the_model_and_it_answers(gateway, model):
    call = {
        "id": "call_abc123",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
    }
    completion = gateway["client"].chat.completions.create(
        model=model,
        messages=[
            {"role": "system", "content": "You are a weather bot."},
            {"role": "user", "content": "Weather in Oslo?"},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "call_abc123", "content": "Sunny, 21 C"},
        ],
        tools=[WEATHER],
    )
    assert completion.choices[0].message.content == "Tool said: Sunny, 21 C"
    assert completion.choices[0].finish_reason == "stop"
    sent = _sent(gateway)
    if model == "claude-haiku-4-5":
        assert sent["system"] == "You are a weather bot."
        assert sent["messages"][1] == {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "call_abc123", "name": "get_weather", "input": {"city": "Oslo"}}],
        }
        assert sent["messages"][2] == {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "call_abc123", "content": "Sunny, 21 C"}],
        }
    else:
        assert sent["messages"][2]["tool_calls"] == [call]
        assert sent["messages"][3] == {"role": "tool", "tool_call_id": "call_abc123", "content": "Sunny, 21 C"}


@pytest.mark.parametrize("model", MODELS)
def test_streamed_tool_calls_arrive_as_the_openai_sdk_reads_them(gateway, model):
    stream = gateway["client"].chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "Weather?"}],
        tools=[WEATHER],
        tool_choice="required",
        stream=True,
        stream_options={"include_usage": True},
    )
    names, arguments, ids, finish, usage = {}, {}, {}, None, None
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for choice in chunk.choices:
            finish = choice.finish_reason or finish
            for piece in choice.delta.tool_calls or ():
                if piece.id:
                    ids[piece.index] = piece.id
                if piece.function and piece.function.name:
                    names[piece.index] = piece.function.name
                if piece.function and piece.function.arguments:
                    arguments[piece.index] = arguments.get(piece.index, "") + piece.function.arguments
    assert names == {0: "get_weather"} and ids[0]
    assert json.loads(arguments[0]) == {"city": "Weather?", "days": 1}
    assert finish == "tool_calls" and usage.completion_tokens > 0
    task = ProcessedTask.objects.get()
    assert task.output_json == {
        "tool_calls": [
            {"id": ids[0], "type": "function", "function": {"name": "get_weather", "arguments": arguments[0]}}
        ]
    }
    if model == "claude-haiku-4-5":
        assert _sent(gateway)["tool_choice"] == {"type": "any"}


@pytest.mark.parametrize("model", MODELS)
def test_images_reach_the_model_by_url_and_inline(gateway, model):
    completion = gateway["client"].chat.completions.create(
        model=model,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in these?"},
                    {"type": "image_url", "image_url": {"url": PIXEL}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg", "detail": "low"}},
                ],
            }
        ],
    )
    assert completion.choices[0].message.content.startswith("I see 2 image(s).")
    content = _sent(gateway)["messages"][0]["content"]
    if model == "claude-haiku-4-5":
        assert content[1] == {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": PIXEL.split(",", 1)[1]},
        }
        assert content[2] == {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}}
    else:
        assert content[1] == {"type": "image_url", "image_url": {"url": PIXEL, "detail": "auto"}}
    assert ProcessedTask.objects.get().input_text == "What is in these?"


def test_sampling_options_and_json_schema_pass_through_to_an_openai_model(gateway):
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    completion = gateway["client"].chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Give JSON"}],
        response_format={"type": "json_schema", "json_schema": {"name": "reply", "schema": schema, "strict": True}},
        top_p=0.5,
        seed=7,
        presence_penalty=0.1,
        frequency_penalty=0.2,
        stop=["zzz"],
        user="end-user-1",
        n=1,
    )
    assert "answer" in json.loads(completion.choices[0].message.content)
    sent = _sent(gateway)
    assert sent["response_format"]["json_schema"]["schema"] == schema
    assert (sent["top_p"], sent["seed"], sent["presence_penalty"], sent["frequency_penalty"]) == (0.5, 7, 0.1, 0.2)
    assert (sent["stop"], sent["user"]) == (["zzz"], "end-user-1")
    assert ProcessedTask.objects.get().output_json["answer"]


def test_an_anthropic_model_gets_a_schema_stop_sequences_and_its_finish_reasons_mapped(gateway):
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}}
    completion = gateway["client"].chat.completions.create(
        model="claude-haiku-4-5",
        messages=[{"role": "user", "content": "Give JSON"}],
        response_format={"type": "json_schema", "json_schema": {"name": "reply", "schema": schema}},
        stop="never-in-the-answer",
        user="end-user-2",
    )
    assert completion.choices[0].finish_reason == "stop"  # Anthropic's end_turn
    assert "answer" in json.loads(completion.choices[0].message.content)
    sent = _sent(gateway)
    assert sent["output_config"] == {"format": {"type": "json_schema", "schema": schema}}
    assert sent["stop_sequences"] == ["never-in-the-answer"]
    assert sent["metadata"] == {"user_id": "end-user-2"}


REFUSED = [
    # (model, arguments, code, param)
    ("text-only", {"tools": [WEATHER]}, "model_capability_missing", "tools"),
    (
        "text-only",
        {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": PIXEL}}]}]},
        "model_capability_missing",
        "messages",
    ),
    ("text-only", {"response_format": {"type": "json_object"}}, "model_capability_missing", "response_format"),
    ("claude-haiku-4-5", {"seed": 3}, "unsupported_parameter", "seed"),
    ("claude-haiku-4-5", {"temperature": 0.2}, "unsupported_parameter", "temperature"),
    ("claude-haiku-4-5", {"frequency_penalty": 0.5}, "unsupported_parameter", "frequency_penalty"),
    ("gpt-4o-mini", {"logit_bias": {"50256": -100}}, "unsupported_parameter", "logit_bias"),
    ("gpt-4o-mini", {"extra_body": {"made_up": 1}}, "unsupported_parameter", "made_up"),
    ("gpt-4o-mini", {"n": 2}, "invalid", "n"),
    ("gpt-4o-mini", {"store": True}, "invalid", "store"),
    ("gpt-4o-mini", {"tool_choice": "auto"}, "invalid", "tool_choice"),
    (
        "gpt-4o-mini",
        {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "nope"}}},
        "invalid",
        "tool_choice",
    ),  # noqa: E501
    ("gpt-4o-mini", {"tools": [WEATHER, WEATHER]}, "invalid", "tools[1].function.name"),
    ("gpt-4o-mini", {"stop": ["a", "b", "c", "d", "e"]}, "invalid", "stop"),
    ("gpt-4o-mini", {"response_format": {"type": "json_schema"}}, "invalid", "response_format.json_schema"),
    (
        "gpt-4o-mini",
        {"messages": [{"role": "user", "content": "hi"}, {"role": "tool", "tool_call_id": "x", "content": "r"}]},
        "invalid",
        "messages[1].tool_call_id",
    ),
    (
        "gpt-4o-mini",
        {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://plain"}}]}]},
        "invalid",
        "messages[0].content[0].image_url.url",
    ),
    (
        "gpt-4o-mini",
        {
            "messages": [
                {"role": "user", "content": "hi"},
                {
                    "role": "assistant",
                    "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "[1]"}}],
                },  # noqa: E501
            ]
        },
        "invalid",
        "messages[1].tool_calls[0].function.arguments",
    ),
    (
        "gpt-4o-mini",
        {"messages": [{"role": "user", "content": [{"type": "input_audio"}]}]},
        "invalid",
        "messages[0].content[0]",
    ),  # noqa: E501
]


@pytest.mark.parametrize(("model", "arguments", "code", "param"), REFUSED)
def test_what_a_model_cannot_honour_is_a_400_in_openais_shape_before_anything_is_counted(
    gateway, model, arguments, code, param
):
    arguments = {"messages": [{"role": "user", "content": "hi"}], **arguments}
    calls_before = sum(gateway["provider"].hits.values())
    with pytest.raises(openai.BadRequestError) as raised:
        gateway["client"].chat.completions.create(model=model, **arguments)
    error = raised.value.body
    assert error["code"] == code, error
    assert error["param"] == param and error["type"] == "invalid_request_error"
    assert raised.value.code == code and raised.value.param == param
    assert sum(gateway["provider"].hits.values()) == calls_before
    assert not ProcessedTask.objects.exists() and _requests_used(gateway) == 0
