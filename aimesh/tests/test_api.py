"""/api/v1/ai-models, /prompts and /ai-keys: catalogue visibility, staff writes, and provider
keys that never leave the server."""

import json

import pytest
from rest_framework.test import APIClient

from aimesh.api.serializers import AIModelSerializer
from aimesh.models import AIApiKey, AIModel, Prompt, Provider
from celaest import crypto
from settings_app.services.api_keys import api_key_create
from tests.clients import client_as
from tests.factories import (
    AIApiKeyFactory,
    AIModelFactory,
    ProcessedTaskFactory,
    PromptFactory,
)

pytestmark = pytest.mark.django_db

RAW_PROVIDER_KEY = "sk-live-0123456789abcdefWXYZ"


# --- ai-models ---------------------------------------------------------------------------------


def test_customers_see_active_models_only(owner, staff):
    active = AIModelFactory(model_id="gpt-live")
    retired = AIModelFactory(model_id="gpt-retired", is_active=False)

    body = client_as(owner).get("/api/v1/ai-models").json()
    assert [row["model_id"] for row in body["results"]] == [active.model_id]
    assert client_as(owner).get(f"/api/v1/ai-models/{retired.pk}").status_code == 404

    staff_ids = {row["model_id"] for row in client_as(staff).get("/api/v1/ai-models").json()["results"]}
    assert staff_ids == {"gpt-live", "gpt-retired"}


def test_model_filters(owner):
    AIModelFactory(model_id="claude-x", provider=Provider.ANTHROPIC, display_name="Claude X")
    AIModelFactory(model_id="gpt-y", provider=Provider.OPENAI, is_default=True)
    client = client_as(owner)

    def model_ids(query):
        return [row["model_id"] for row in client.get("/api/v1/ai-models", query).json()["results"]]

    assert model_ids({"provider": "anthropic"}) == ["claude-x"]
    assert model_ids({"is_default": "true"}) == ["gpt-y"]
    assert model_ids({"search": "Claude"}) == ["claude-x"]


def test_staff_create_model_and_duplicate_provider_model_id_is_400(staff):
    client = client_as(staff)
    payload = {"provider": "openai", "model_id": "gpt-4o-mini", "display_name": "GPT-4o mini", "capabilities": ["chat"]}
    assert client.post("/api/v1/ai-models", payload, format="json").status_code == 201

    response = client.post("/api/v1/ai-models", payload, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert AIModel.objects.filter(model_id="gpt-4o-mini").count() == 1

    # The same model id under another provider is a different model.
    other = {**payload, "provider": "openrouter"}
    assert client.post("/api/v1/ai-models", other, format="json").status_code == 201


def test_a_duplicate_that_slips_past_validation_is_a_409_not_a_500(staff, monkeypatch):
    """Two concurrent creates both pass the serializer's uniqueness check; the database decides."""
    existing = AIModelFactory(provider=Provider.OPENAI, model_id="gpt-race")
    monkeypatch.setattr(AIModelSerializer, "get_validators", lambda self: [])
    payload = {"provider": "openai", "model_id": existing.model_id, "display_name": "Race"}
    response = client_as(staff).post("/api/v1/ai-models", payload, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conflict"
    assert AIModel.objects.filter(model_id="gpt-race").count() == 1


@pytest.mark.parametrize(
    "change",
    [{"cost_per_1k_input": "-0.1"}, {"capabilities": "chat"}, {"max_tokens_input": 0}, {"provider": "nope"}],
)
def test_bad_model_input_is_a_400(staff, change):
    model = AIModelFactory()
    response = client_as(staff).patch(f"/api/v1/ai-models/{model.pk}", change, format="json")
    assert response.status_code == 400
    assert set(change) <= set(response.json()["error"]["details"])


def test_customers_cannot_write_models(owner):
    model = AIModelFactory()
    client = client_as(owner)
    assert client.patch(f"/api/v1/ai-models/{model.pk}", {"is_active": False}, format="json").status_code == 403
    assert client.delete(f"/api/v1/ai-models/{model.pk}").status_code == 403
    model.refresh_from_db()
    assert model.is_active


def test_deleting_a_model_tasks_ran_on_is_a_409(staff):
    task = ProcessedTaskFactory()
    response = client_as(staff).delete(f"/api/v1/ai-models/{task.model_id}")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "in_use"


# --- prompts -----------------------------------------------------------------------------------


def test_customers_see_active_prompt_versions_only(owner, staff):
    old = PromptFactory(slug="summarize", version=1, is_active=False)
    current = PromptFactory(slug="summarize", version=2, is_active=True, parent=old)
    PromptFactory(slug="draft", version=1, is_active=False)

    body = client_as(owner).get("/api/v1/prompts").json()
    assert [(row["slug"], row["version"]) for row in body["results"]] == [("summarize", 2)]
    assert body["results"][0]["parent"] == str(old.pk)
    assert client_as(owner).get(f"/api/v1/prompts/{old.pk}").status_code == 404
    assert client_as(owner).get(f"/api/v1/prompts/{current.pk}").status_code == 200

    staff_rows = client_as(staff).get("/api/v1/prompts", {"slug": "summarize"}).json()["results"]
    assert [row["version"] for row in staff_rows] == [2, 1]


def test_prompt_filters(owner, staff):
    PromptFactory(slug="invoice-extract", category="finance")
    PromptFactory(slug="tweet", category="marketing")
    PromptFactory(slug="tweet", category="marketing", version=2, is_active=False)
    client = client_as(owner)

    def slugs(query):
        return [(row["slug"], row["version"]) for row in client.get("/api/v1/prompts", query).json()["results"]]

    assert slugs({"category": "finance"}) == [("invoice-extract", 1)]
    assert slugs({"slug": "tweet"}) == [("tweet", 1)]
    assert slugs({"slug": "tweet", "version": 2}) == []  # inactive: staff only
    staff_rows = client_as(staff).get("/api/v1/prompts", {"slug": "tweet", "version": 2}).json()["results"]
    assert [row["version"] for row in staff_rows] == [2]


def test_staff_create_prompt_version_stamps_author_and_rejects_duplicate_version(staff):
    v1 = PromptFactory(slug="classify", version=1, is_active=True)
    client = client_as(staff)
    payload = {"slug": "classify", "name": "Classify", "version": 2, "parent": str(v1.pk), "is_active": False}
    response = client.post("/api/v1/prompts", payload, format="json")
    assert response.status_code == 201, response.json()
    assert Prompt.objects.get(pk=response.json()["id"]).created_by == staff

    duplicate = client.post("/api/v1/prompts", payload, format="json")
    assert duplicate.status_code == 400
    assert Prompt.objects.filter(slug="classify", version=2).count() == 1


def test_replacing_a_prompt_without_version_or_active_flag_keeps_them(staff):
    prompt = PromptFactory(slug="classify", version=3, is_active=True)
    payload = {"slug": "classify", "name": "Classify v3", "system_prompt": "Be terse."}
    response = client_as(staff).put(f"/api/v1/prompts/{prompt.pk}", payload, format="json")
    assert response.status_code == 200, response.json()
    prompt.refresh_from_db()
    assert (prompt.version, prompt.is_active, prompt.name) == (3, True, "Classify v3")


def test_a_second_active_version_of_a_prompt_is_refused(staff):
    PromptFactory(slug="classify", version=1, is_active=True)
    payload = {"slug": "classify", "name": "Classify", "version": 2, "is_active": True}
    response = client_as(staff).post("/api/v1/prompts", payload, format="json")
    assert response.status_code == 400
    assert Prompt.objects.filter(slug="classify").count() == 1


@pytest.mark.parametrize(
    "change",
    [{"temperature": "2.5"}, {"version": 0}, {"variables": "text"}, {"variables": [{"type": "string"}]}],
)
def test_bad_prompt_input_is_a_400(staff, change):
    prompt = PromptFactory()
    response = client_as(staff).patch(f"/api/v1/prompts/{prompt.pk}", change, format="json")
    assert response.status_code == 400
    assert set(change) <= set(response.json()["error"]["details"])


def test_prompt_parent_must_be_a_version_of_the_same_prompt(staff):
    other = PromptFactory(slug="other")
    prompt = PromptFactory(slug="mine")
    response = client_as(staff).patch(f"/api/v1/prompts/{prompt.pk}", {"parent": str(other.pk)}, format="json")
    assert response.status_code == 400
    assert "parent" in response.json()["error"]["details"]


# --- ai-keys -----------------------------------------------------------------------------------


def test_customers_get_403_on_the_key_pool(owner):
    key = AIApiKeyFactory()
    client = client_as(owner)
    assert client.get("/api/v1/ai-keys").status_code == 403
    assert client.get(f"/api/v1/ai-keys/{key.pk}").status_code == 403
    assert client.post("/api/v1/ai-keys", {"provider": "openai"}, format="json").status_code == 403


def test_customer_api_key_with_every_scope_still_gets_403_on_the_key_pool(owner):
    raw_key = api_key_create(user=owner, name="all", scopes=["*"]).raw_key
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    assert client.get("/api/v1/ai-keys").status_code == 403


def test_staff_add_a_key_stored_encrypted_and_never_returned(staff):
    client = client_as(staff)
    payload = {"provider": "openai", "key_name": "primary", "api_key": RAW_PROVIDER_KEY, "priority": 10}
    response = client.post("/api/v1/ai-keys", payload, format="json")
    assert response.status_code == 201, response.json()

    stored = AIApiKey.objects.get(key_name="primary")
    assert crypto.decrypt(stored.key_encrypted) == RAW_PROVIDER_KEY
    assert stored.key_hint == "WXYZ"

    responses = [
        response,
        client.get("/api/v1/ai-keys"),
        client.get(f"/api/v1/ai-keys/{stored.pk}"),
        client.patch(f"/api/v1/ai-keys/{stored.pk}", {"priority": 5}, format="json"),
    ]
    for answer in responses:
        text = json.dumps(answer.json())
        assert RAW_PROVIDER_KEY not in text
        assert stored.key_encrypted not in text
        assert "key_encrypted" not in text and '"api_key"' not in text
    assert response.json()["key_hint"] == "WXYZ"


def test_updating_a_key_without_a_new_secret_keeps_it_and_a_new_secret_replaces_it(staff):
    key = AIApiKeyFactory(key_encrypted=crypto.encrypt("sk-old-secret-1111"), key_hint="1111")
    client = client_as(staff)

    assert client.patch(f"/api/v1/ai-keys/{key.pk}", {"is_active": False}, format="json").status_code == 200
    key.refresh_from_db()
    assert crypto.decrypt(key.key_encrypted) == "sk-old-secret-1111" and not key.is_active

    put = {"provider": "openai", "key_name": key.key_name, "rate_limit_rpm": 30}
    assert client.put(f"/api/v1/ai-keys/{key.pk}", put, format="json").status_code == 200
    key.refresh_from_db()
    assert crypto.decrypt(key.key_encrypted) == "sk-old-secret-1111" and key.rate_limit_rpm == 30

    response = client.patch(f"/api/v1/ai-keys/{key.pk}", {"api_key": "sk-new-secret-2222"}, format="json")
    assert response.status_code == 200
    key.refresh_from_db()
    assert crypto.decrypt(key.key_encrypted) == "sk-new-secret-2222" and key.key_hint == "2222"


def test_a_key_needs_a_secret_and_a_unique_name_per_provider(staff):
    AIApiKeyFactory(provider=Provider.OPENAI, key_name="primary")
    client = client_as(staff)

    missing = client.post("/api/v1/ai-keys", {"provider": "openai", "key_name": "other"}, format="json")
    assert missing.status_code == 400
    assert "api_key" in missing.json()["error"]["details"]

    duplicate = {"provider": "openai", "key_name": "primary", "api_key": RAW_PROVIDER_KEY}
    assert client.post("/api/v1/ai-keys", duplicate, format="json").status_code == 400
    assert AIApiKey.objects.filter(key_name="primary").count() == 1


def test_key_pool_filters_and_delete(staff):
    healthy = AIApiKeyFactory(provider=Provider.ANTHROPIC)
    AIApiKeyFactory(provider=Provider.OPENAI, is_healthy=False)
    client = client_as(staff)
    rows = client.get("/api/v1/ai-keys", {"provider": "anthropic", "is_healthy": "true"}).json()["results"]
    assert [row["id"] for row in rows] == [str(healthy.pk)]
    assert client.delete(f"/api/v1/ai-keys/{healthy.pk}").status_code == 204
    assert not AIApiKey.objects.filter(pk=healthy.pk).exists()
