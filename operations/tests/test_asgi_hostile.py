"""Hostile input to the AI paths as the ASGI server of production serves them (uvicorn,
``celaest.asgi.AIHandler``, its own middleware): a clear 4xx in the API's JSON error shape,
nothing recorded or counted."""

import httpx
import pytest

from aimesh.testing import ai_model, pool_key
from licensing.models import License
from operations.models import ProcessedTask
from settings_app.services.api_keys import api_key_create
from tests import factories as f

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def caller(asgi_server, provider):
    ai_model()
    pool_key(provider, "sk-hostile")
    license = f.LicenseFactory()
    user = f.UserFactory(organization=license.organization)
    raw = api_key_create(user=user, name="hostile", scopes=["tasks:write"]).raw_key
    client = httpx.Client(base_url=asgi_server.url, headers={"Authorization": f"Bearer {raw}"}, timeout=30)
    yield {"client": client, "license": license, "provider": provider}
    client.close()


def _deep(levels: int) -> bytes:
    return b'{"model": "gpt-4o-mini", "messages": ' + b"[" * levels + b"]" * levels + b"}"


GATEWAY = ["/v1/chat/completions", "/v1/messages", "/v1/responses", "/v1/embeddings"]


def _error(response, path: str) -> dict:
    """The error of a body in the path's protocol: the project's shape with OpenAI's ``type`` and
    ``param`` on the gateway, Anthropic's envelope on /v1/messages."""
    body = response.json()
    fields = {"code", "message", "details"}
    if path == "/v1/messages":
        assert set(body) == {"type", "error"} and body["type"] == "error"
        fields |= {"type"}
    elif path.startswith("/v1/"):
        fields |= {"type", "param"}
    assert set(body["error"]) == fields, body
    return body["error"]


@pytest.mark.parametrize("path", [*GATEWAY, "/api/v1/tasks"])
@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "\\ud800"}]}', 400, "malformed_request"),
        (_deep(5000), 400, "malformed_request"),
        (b"{not json", 400, "malformed_request"),
        (b'{"model": 7, "messages": "hello", "prompt": [], "input_text": {}}', 400, None),
        (b"[]", 400, None),
    ],
)
def test_bad_bodies_are_a_4xx_and_nothing_is_recorded(caller, path, body, status, code):
    response = caller["client"].post(path, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == status, response.text
    error = _error(response, path)
    if code:
        assert error["code"] == code
    assert not ProcessedTask.objects.exists()
    assert License.objects.get(pk=caller["license"].pk).ai_requests_used == 0
    assert sum(caller["provider"].hits.values()) == 0


@pytest.mark.parametrize("path", GATEWAY)
@pytest.mark.parametrize("declared", [True, False])
def test_a_body_over_20_mb_is_refused_while_read(caller, declared, path):
    """With or without a Content-Length (a chunked upload), the server stops reading at 20 MB."""
    size = 21 * 1024 * 1024
    if declared:
        content = b"x" * size
    else:
        content = iter([b"x" * (1024 * 1024)] * 21)  # sent chunked
    response = caller["client"].post(path, content=content)
    assert response.status_code == 413
    assert _error(response, path)["code"] == "request_too_large"
    assert not ProcessedTask.objects.exists()
