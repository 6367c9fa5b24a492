"""Embeddings at ``/v1/embeddings``, through the official ``openai`` client over the ASGI server:
metered by input tokens and cost like completions, for models with the ``embeddings`` capability."""

from decimal import Decimal

import openai
import pytest

from aimesh.fake_provider import embedding_vector
from aimesh.models import Provider
from aimesh.testing import ai_model, pool_key
from licensing.models import License
from operations.models import ProcessedTask
from settings_app.services.api_keys import api_key_create
from tests import factories as f

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def gateway(asgi_server, provider):
    ai_model(
        "text-embedding-3-small",
        capabilities=["embeddings"],
        cost_per_1k_input=Decimal("0.020000"),
        cost_per_1k_output=Decimal("0"),
        is_default=False,
    )
    ai_model("gpt-4o-mini")
    ai_model("claude-haiku-4-5", provider=Provider.ANTHROPIC, is_default=False, capabilities=["chat", "embeddings"])
    pool_key(provider, "sk-emb-openai")
    pool_key(provider, "sk-emb-ant", vendor=Provider.ANTHROPIC)
    plan = f.SubscriptionPlanFactory(limits={"ai_requests_per_month": 10, "tokens_per_month": None})
    license = f.LicenseFactory(plan=plan)
    user = f.UserFactory(organization=license.organization)
    raw = api_key_create(user=user, name="embeddings", scopes=["tasks:write"]).raw_key
    client = openai.OpenAI(api_key=raw, base_url=f"{asgi_server.url}/v1", max_retries=0, timeout=20)
    return {"client": client, "license": license, "provider": provider}


def _requests_used(gateway) -> int:
    return License.objects.get(pk=gateway["license"].pk).ai_requests_used


def test_embeddings_come_back_as_the_sdk_decodes_them_and_are_metered(gateway):
    # The SDK asks for base64 unless told otherwise, and decodes it.
    result = gateway["client"].embeddings.create(model="text-embedding-3-small", input=["first text", "second"])
    assert [item.index for item in result.data] == [0, 1]
    assert result.data[0].embedding == pytest.approx(embedding_vector("first text", 8), rel=1e-6)
    assert result.model == "text-embedding-3-small" and result.usage.prompt_tokens > 0
    task = ProcessedTask.objects.get()
    assert task.status == "completed" and task.input_variables == {"inputs": 2, "gateway": "embeddings"}
    assert task.tokens_input == result.usage.prompt_tokens and task.tokens_output == 0
    assert task.cost_usd == Decimal("0.020000") * task.tokens_input / 1000
    assert task.output_json == {"embeddings": 2} and task.input_text == "first text"
    assert _requests_used(gateway) == 1
    assert gateway["provider"].bodies[-1]["encoding_format"] == "base64"


def test_floats_dimensions_user_and_token_arrays_pass_through(gateway):
    result = gateway["client"].embeddings.create(
        model="text-embedding-3-small", input=[[1, 2, 3], [4, 5]], encoding_format="float", dimensions=4, user="u-1"
    )
    assert len(result.data) == 2 and len(result.data[0].embedding) == 4
    sent = gateway["provider"].bodies[-1]
    assert sent == {
        "model": "text-embedding-3-small",
        "input": [[1, 2, 3], [4, 5]],
        "encoding_format": "float",
        "dimensions": 4,
        "user": "u-1",
    }
    assert result.usage.prompt_tokens == 5


@pytest.mark.parametrize(
    ("arguments", "code", "param"),
    [
        ({"model": "gpt-4o-mini"}, "model_capability_missing", "model"),
        ({"model": "claude-haiku-4-5"}, "model_capability_missing", "model"),
        ({"input": ""}, "invalid", "input"),
        ({"input": []}, "invalid", "input"),
        ({"input": ["text", [1, 2]]}, "invalid", "input"),
        ({"input": [[-1]]}, "invalid", "input"),
        ({"input": ["x"] * 2049}, "invalid", "input"),
        ({"dimensions": 0}, "invalid", "dimensions"),
        ({"encoding_format": "int8"}, "invalid", "encoding_format"),
        ({"extra_body": {"truncate": True}}, "unsupported_parameter", "truncate"),
    ],
)
def test_bad_embedding_requests_are_400s_and_nothing_is_counted(gateway, arguments, code, param):
    arguments = {"model": "text-embedding-3-small", "input": "hello"} | arguments
    calls_before = sum(gateway["provider"].hits.values())
    with pytest.raises(openai.BadRequestError) as raised:
        gateway["client"].embeddings.create(**arguments)
    assert raised.value.code == code and raised.value.param == param
    assert not ProcessedTask.objects.exists() and _requests_used(gateway) == 0
    assert sum(gateway["provider"].hits.values()) == calls_before
