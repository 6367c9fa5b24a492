"""OpenAI's Responses API at ``/v1/responses``, stateless, through the official ``openai`` client
over the ASGI server: input items and instructions, function calls and their outputs, images,
JSON schemas, streams as the SDK accumulates them, for OpenAI-compatible and Anthropic models."""

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
MODELS = ["gpt-4o-mini", "claude-haiku-4-5"]
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
PIXEL = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n tiny").decode()


@pytest.fixture
def gateway(asgi_server, provider):
    ai_model("gpt-4o-mini", capabilities=CAPABLE)
    ai_model("claude-haiku-4-5", provider=Provider.ANTHROPIC, is_default=False, capabilities=CAPABLE)
    pool_key(provider, "sk-resp-openai")
    pool_key(provider, "sk-resp-ant", vendor=Provider.ANTHROPIC)
    license = f.LicenseFactory(plan=f.SubscriptionPlanFactory(limits={"ai_requests_per_month": 50}))
    user = f.UserFactory(organization=license.organization)
    raw = api_key_create(user=user, name="responses", scopes=["tasks:write"]).raw_key
    client = openai.OpenAI(api_key=raw, base_url=f"{asgi_server.url}/v1", max_retries=0, timeout=20)
    return {"client": client, "license": license, "provider": provider}


def _requests_used(gateway) -> int:
    return License.objects.get(pk=gateway["license"].pk).ai_requests_used


@pytest.mark.parametrize("model", MODELS)
def test_a_response_from_text_input_and_instructions(gateway, model):
    response = gateway["client"].responses.create(model=model, instructions="Be brief.", input="Hello responses")
    assert response.status == "completed" and response.model == model and response.output_text
    assert response.output[0].type == "message" and response.output[0].content[0].type == "output_text"
    assert response.usage.input_tokens > 0 and response.usage.output_tokens > 0
    task = ProcessedTask.objects.get()
    assert task.status == "completed" and task.input_variables["gateway"] == "responses"
    assert task.output_text == response.output_text and response.id == f"resp_{task.pk.hex}"
    assert _requests_used(gateway) == 1


@pytest.mark.parametrize("model", MODELS)
def test_function_calls_and_their_outputs_round_trip(gateway, model):
    client = gateway["client"]
    first = client.responses.create(model=model, input="Weather in Quito?", tools=[WEATHER], tool_choice="required")
    (call,) = [item for item in first.output if item.type == "function_call"]
    assert call.name == "get_weather" and json.loads(call.arguments) == {"city": "Weather in Quito?"}
    second = client.responses.create(
        model=model,
        tools=[WEATHER],
        input=[
            {"role": "user", "content": "Weather in Quito?"},
            {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
            {"type": "function_call_output", "call_id": call.call_id, "output": "Rainy"},
        ],
    )
    assert second.output_text == "Tool said: Rainy"


@pytest.mark.parametrize("model", MODELS)
def test_a_streamed_response_accumulates_in_the_sdk(gateway, model):
    with gateway["client"].responses.stream(model=model, input="Stream please") as stream:
        deltas = [event.delta for event in stream if event.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert deltas and final.output_text == "".join(deltas) and final.status == "completed"
    assert final.usage.output_tokens > 0
    assert ProcessedTask.objects.get().output_text == final.output_text

    with gateway["client"].responses.stream(
        model=model, input="Lima", tools=[WEATHER], tool_choice="required"
    ) as stream:
        final = stream.get_final_response()
    (call,) = [item for item in final.output if item.type == "function_call"]
    assert call.name == "get_weather" and json.loads(call.arguments) == {"city": "Lima"}


def test_images_and_a_json_schema_reach_the_model(gateway):
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}}
    response = gateway["client"].responses.create(
        model="gpt-4o-mini",
        input=[
            {
                "role": "user",
                "content": [{"type": "input_text", "text": "What is it?"}, {"type": "input_image", "image_url": PIXEL}],
            }
        ],
        text={"format": {"type": "json_schema", "name": "reply", "schema": schema}},
    )
    assert "answer" in json.loads(response.output_text)
    sent = gateway["provider"].bodies[-1]
    assert sent["messages"][0]["content"][1] == {"type": "image_url", "image_url": {"url": PIXEL, "detail": "auto"}}
    assert sent["response_format"] == {"type": "json_schema", "json_schema": {"name": "reply", "schema": schema}}


@pytest.mark.parametrize(
    ("arguments", "code", "param"),
    [
        ({"previous_response_id": "resp_123"}, "unsupported_parameter", "previous_response_id"),
        ({"store": True}, "invalid", "store"),
        ({"reasoning": {"effort": "high"}}, "unsupported_parameter", "reasoning"),
        ({"input": [{"type": "reasoning", "summary": []}]}, "invalid", "input[0].type"),
        ({"input": [{"role": "robot", "content": "x"}]}, "invalid", "input[0].role"),
        ({"tools": [{"type": "web_search"}]}, "invalid", "tools[0]"),
        ({"input": []}, "invalid", "input"),
    ],
)
def test_what_a_stateless_gateway_cannot_do_is_refused_by_name(gateway, arguments, code, param):
    arguments = {"model": "gpt-4o-mini", "input": "hi"} | arguments
    with pytest.raises(openai.BadRequestError) as raised:
        gateway["client"].responses.create(**arguments)
    assert raised.value.code == code and raised.value.param == param
    assert not ProcessedTask.objects.exists() and _requests_used(gateway) == 0
