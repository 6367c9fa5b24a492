"""The OpenAI-compatible gateway, driven by the official ``openai`` client over real HTTP (the ASGI
server of production, uvicorn) and answered by the local fake provider through the key pool."""

import time

import httpx
import openai
import pytest
from rest_framework.test import APIClient

from aimesh.models import AIApiKey, AIModel, Provider
from aimesh.testing import ai_model, pool_key
from audit.models import AuditLog
from celaest.crypto import hash_secret
from celaest.readcache import rows_changed
from licensing.models import License, LicenseUsageLog
from licensing.services import license_suspend
from operations.models import ProcessedTask
from operations.services import tasks_recover_stale
from settings_app.models import UserApiKey
from settings_app.services.api_keys import api_key_create, api_key_revoke
from tests import factories as f

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def gateway(asgi_server, provider):
    ai_model("gpt-4o-mini")
    ai_model("claude-haiku-4-5", provider=Provider.ANTHROPIC, is_default=False)
    pool_key(provider, "sk-gw-openai")
    pool_key(provider, "sk-gw-ant", vendor=Provider.ANTHROPIC)
    plan = f.SubscriptionPlanFactory(limits={"ai_requests_per_month": 5, "tokens_per_month": None})
    license = f.LicenseFactory(plan=plan)
    user = f.UserFactory(organization=license.organization)
    raw = api_key_create(user=user, name="gateway", scopes=["tasks:write"]).raw_key
    client = openai.OpenAI(api_key=raw, base_url=f"{asgi_server.url}/v1", max_retries=0, timeout=20)
    return {"client": client, "license": license, "provider": provider, "raw": raw, "url": asgi_server.url}


@pytest.mark.parametrize("model", ["gpt-4o-mini", "claude-haiku-4-5"])
def test_the_openai_client_gets_a_completion_and_the_task_is_recorded(gateway, model):
    completion = gateway["client"].chat.completions.create(
        model=model,
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello gateway"}],
    )
    assert completion.choices[0].message.content
    assert completion.usage.prompt_tokens > 0 and completion.usage.completion_tokens > 0
    task = ProcessedTask.objects.get()
    assert task.status == "completed" and task.model.model_id == model
    assert task.tokens_input == completion.usage.prompt_tokens and task.cost_usd > 0
    assert License.objects.get(pk=gateway["license"].pk).ai_requests_used == 1
    # The task row is the call's record: no audit row per completion.
    assert not AuditLog.objects.filter(action=AuditLog.Action.API_KEY_USED).exists()


def test_streaming_through_the_gateway(gateway):
    stream = gateway["client"].chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Stream please"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    usage = chunks[-1].usage
    assert len(text) > 10 and usage.completion_tokens > 0
    task = ProcessedTask.objects.get()
    assert task.output_text == text and task.tokens_output == usage.completion_tokens
    assert LicenseUsageLog.objects.get(license=gateway["license"]).tokens_output == usage.completion_tokens


def test_models_are_listed(gateway):
    assert {m.id for m in gateway["client"].models.list()} == {"gpt-4o-mini", "claude-haiku-4-5"}


def test_failover_happens_behind_the_gateway(gateway):
    pool_key(gateway["provider"], "sk-fail-429", priority=1)
    completion = gateway["client"].chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
    )
    assert completion.choices[0].message.content
    assert ProcessedTask.objects.get().attempts == 2


def test_limits_and_errors_reach_the_client(gateway):
    client = gateway["client"]
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
    License.objects.filter(pk=gateway["license"].pk).update(custom_limits={"ai_requests_per_month": 0})
    with pytest.raises(openai.RateLimitError) as raised:
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
    assert raised.value.body["code"] == "ai_requests_limit_reached"
    assert sum(gateway["provider"].hits.values()) == 0


def test_authentication_and_scope(gateway):
    bad = openai.OpenAI(api_key="cel_not-a-key", base_url=f"{gateway['url']}/v1", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()
    user = f.UserFactory(organization=gateway["license"].organization)
    read_only = api_key_create(user=user, name="ro", scopes=["licenses:read"]).raw_key
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {read_only}")
    response = client.post("/v1/chat/completions", {"model": "gpt-4o-mini", "messages": []}, format="json")
    assert response.status_code == 403
    # A session login is not accepted: the gateway is for API keys
    session = APIClient()
    session.force_login(user)
    assert session.get("/v1/models").status_code in (401, 403)


def _stream_request(gateway, content: str):
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": content}], "stream": True}
    headers = {"Authorization": f"Bearer {gateway['raw']}"}
    return httpx.stream("POST", f"{gateway['url']}/v1/chat/completions", json=body, headers=headers, timeout=20)


def _eventually(check, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not reached in time"
        time.sleep(0.05)


def test_a_client_leaving_mid_stream_closes_upstream_and_its_task(gateway):
    """A client that goes away mid-stream: the server stops reading the provider (its connection
    is closed), and the task is closed with what was produced. The request stays counted (the
    provider was already working), with the tokens of the text produced."""
    gateway["provider"].set_stream_interval(200)
    with _stream_request(gateway, "Stream please") as response:
        assert response.status_code == 200
        events = (line for line in response.iter_lines() if line)
        assert next(events).startswith("data: ")  # the role
        assert '"content": "' in next(events)  # a first piece of the answer
        assert ProcessedTask.objects.get().status == "running"
    # the client's connection is closed here
    _eventually(lambda: ProcessedTask.objects.get().status == "failed")
    task = ProcessedTask.objects.get()
    assert task.error_code == "client_disconnected"
    assert task.output_text and task.tokens_output > 0
    _eventually(lambda: gateway["provider"].cut_streams == 1)
    assert License.objects.get(pk=gateway["license"].pk).ai_requests_used == 1
    period = LicenseUsageLog.objects.get(license=gateway["license"])
    assert (period.ai_requests_count, period.tokens_output) == (1, task.tokens_output)


def test_a_stream_outliving_the_stale_time_keeps_its_claim_and_is_counted(gateway, settings):
    """The beat job closes a running task whose claim is older than the stale time: a stream that
    is still being answered renews its claim, so a long answer is neither cut off nor left uncounted."""
    settings.AI_TASK_STALE_SECONDS = 2
    gateway["provider"].set_stream_interval(250)  # the answer takes several seconds
    with _stream_request(gateway, "A long answer") as response:
        lines = response.iter_lines()
        next(lines)
        time.sleep(2.5)  # longer than the stale time
        assert ProcessedTask.objects.get().status == "running"
        assert tasks_recover_stale() == {"resumed": 0, "closed": 0, "requeued": 0}
        rest = [line for line in lines if line]
    assert rest[-1] == "data: [DONE]"
    task = ProcessedTask.objects.get()
    assert task.status == "completed" and task.tokens_output > 0
    period = LicenseUsageLog.objects.get(license=gateway["license"])
    assert (period.ai_requests_count, period.tokens_output) == (1, task.tokens_output)


def test_changes_between_requests_are_seen_on_the_next_request(gateway):
    """The API key, model, license and key pool are read from the server's copies after the
    first request; each kind of change retires them before the next one."""
    client = gateway["client"]

    def ask():
        return client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])

    assert ask().choices[0].message.content  # the copies are made
    assert ask().choices[0].message.content  # and used

    # The pool's only OpenAI key is taken out of rotation by a bulk update (the admin action's way).
    AIApiKey.objects.filter(provider=Provider.OPENAI).update(is_healthy=False)
    rows_changed(AIApiKey)
    with pytest.raises(openai.InternalServerError) as raised:
        ask()
    assert raised.value.status_code == 503 and raised.value.body["code"] == "ai_unavailable"
    key = AIApiKey.objects.get(provider=Provider.OPENAI)
    key.is_healthy = True
    key.save()
    assert ask().choices[0].message.content

    # The model is switched off.
    model = AIModel.objects.get(model_id="gpt-4o-mini")
    model.is_active = False
    model.save()
    with pytest.raises(openai.BadRequestError) as raised:
        ask()
    assert raised.value.body["code"] == "model_not_found"
    model.is_active = True
    model.save()

    # The license is suspended.
    license_suspend(license=License.objects.get(pk=gateway["license"].pk), reason="unpaid", actor=None)
    with pytest.raises(openai.APIStatusError) as raised:
        ask()
    assert raised.value.status_code == 402

    # The API key is revoked.
    api_key_revoke(api_key=UserApiKey.objects.get(key_hash=hash_secret(gateway["raw"])))
    with pytest.raises(openai.AuthenticationError):
        ask()
    assert ProcessedTask.objects.filter(status="completed").count() == 3


@pytest.mark.parametrize(
    "messages",
    [
        [{"role": "user", "content": "a\ud800b"}],
        [{"role": "system", "content": "\udfff"}, {"role": "user", "content": "hi"}],
        [{"role": "user", "content": [{"type": "text", "text": "x\udc00"}]}],
    ],
    ids=["user", "system", "content-part"],
)
@pytest.mark.parametrize("stream", [False, True])
def test_lone_surrogates_in_a_chat_are_a_400_and_nothing_is_recorded_or_counted(gateway, messages, stream):
    """They reached ``ProcessedTask.objects.create`` and PostgreSQL's encoder: a 500 after the
    request had been counted against the license."""
    import json

    import httpx

    # As JSON escapes (the SDK cannot encode a lone surrogate; a hand-made client can send one).
    body = json.dumps({"model": "gpt-4o-mini", "messages": messages, "stream": stream})
    response = httpx.post(
        f"{gateway['url']}/v1/chat/completions",
        content=body,
        headers={"Authorization": f"Bearer {gateway['raw']}", "Content-Type": "application/json"},
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "malformed_request"
    assert not ProcessedTask.objects.exists()
    assert License.objects.get(pk=gateway["license"].pk).ai_requests_used == 0
