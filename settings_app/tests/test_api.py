"""Settings endpoints: sessions, API keys, webhooks and their deliveries, system config, flags.

Authentication, tenant isolation, roles and scopes are covered for every endpoint by
tests/test_api_contract.py; these tests are about each endpoint's own behaviour.
"""

import base64
import uuid

import pytest
from rest_framework.test import APIClient

from celaest import crypto
from identity.models import User
from settings_app.models import FeatureFlag, SystemConfig, UserApiKey, UserSession, Webhook
from settings_app.services.api_keys import api_key_create
from tests import factories as f
from tests.clients import client_as

pytestmark = pytest.mark.django_db

MASK = "••••••"


def _bearer(raw_key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    return client


def _rows(response) -> list[dict]:
    assert response.status_code == 200, response.content
    return response.json()["results"]


# --- sessions --------------------------------------------------------------------------------


def test_sessions_list_without_tokens_and_delete_revokes(owner):
    session = f.UserSessionFactory(user=owner, user_agent="Firefox")
    client = client_as(owner)

    row = _rows(client.get("/api/v1/sessions"))[0]
    assert row["id"] == str(session.pk) and row["user_agent"] == "Firefox" and row["is_active"] is True
    assert "session_token" not in row and session.session_token not in str(row)

    assert client.delete(f"/api/v1/sessions/{session.pk}").status_code == 204
    session.refresh_from_db()  # the row is kept, marked revoked
    assert session.is_active is False and session.revoked_at is not None
    assert _rows(client.get("/api/v1/sessions?is_active=false"))[0]["revoked_at"] is not None
    assert _rows(client.get("/api/v1/sessions?is_active=true")) == []


def test_the_current_session_is_flagged(owner):
    client = APIClient()
    client.force_login(owner)
    session_key = client.session.session_key
    current = UserSession.objects.get(user=owner, session_token=crypto.hash_secret(session_key))  # made at login
    other = f.UserSessionFactory(user=owner)
    flags = {row["id"]: row["is_current"] for row in _rows(client.get("/api/v1/sessions"))}
    assert flags == {str(current.pk): True, str(other.pk): False}


# --- API keys --------------------------------------------------------------------------------


def test_api_key_is_shown_once_and_stored_as_a_hash(owner):
    client = client_as(owner)
    response = client.post(
        "/api/v1/api-keys", {"name": "CI", "scopes": ["sessions:read"], "expires_in_days": 30}, format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    raw_key = body["key"]
    assert raw_key.startswith("cel_") and len(raw_key) >= 40
    assert body["scopes"] == ["sessions:read"] and body["expires_at"] is not None
    assert raw_key.startswith(body["key_prefix"])

    stored = UserApiKey.objects.get(pk=body["id"])
    assert stored.user == owner
    assert stored.key_hash == crypto.hash_secret(raw_key) and raw_key not in stored.key_hash

    listed = client.get("/api/v1/api-keys")
    detail = client.get(f"/api/v1/api-keys/{stored.pk}")
    for payload in (listed.content.decode(), detail.content.decode()):
        assert raw_key not in payload and stored.key_hash not in payload
    assert "key" not in detail.json() and "key_hash" not in detail.json()

    assert _bearer(raw_key).get("/api/v1/sessions").status_code == 200


def test_revoking_an_api_key_keeps_the_row_and_refuses_the_key(owner):
    issued = api_key_create(user=owner, name="script", scopes=["*"])
    key_client = _bearer(issued.raw_key)
    assert key_client.get("/api/v1/api-keys").status_code == 200

    assert client_as(owner).delete(f"/api/v1/api-keys/{issued.api_key.pk}").status_code == 204
    issued.api_key.refresh_from_db()
    assert issued.api_key.revoked_at is not None

    response = key_client.get("/api/v1/api-keys")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"
    revoked = _rows(client_as(owner).get("/api/v1/api-keys?revoked=true"))
    assert [row["id"] for row in revoked] == [str(issued.api_key.pk)]
    assert _rows(client_as(owner).get("/api/v1/api-keys?revoked=false")) == []


@pytest.mark.parametrize("scopes", [["licenses"], ["licenses:delete"], ["no-such-resource:read"], [":read"]])
def test_invalid_scopes_are_400(owner, scopes):
    response = client_as(owner).post("/api/v1/api-keys", {"name": "bad", "scopes": scopes}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert "scopes" in response.json()["error"]["details"]
    assert not UserApiKey.objects.exists()


def test_api_key_input_is_validated(owner):
    client = client_as(owner)
    assert client.post("/api/v1/api-keys", {"name": ""}, format="json").status_code == 400
    assert client.post("/api/v1/api-keys", {"name": "x", "expires_in_days": 0}, format="json").status_code == 400
    assert client.post("/api/v1/api-keys", {"name": "x", "scopes": "licenses:read"}, format="json").status_code == 400


def test_a_key_cannot_mint_a_key_with_more_scopes(owner):
    issued = api_key_create(user=owner, name="narrow", scopes=["api-keys:write", "sessions:read"])
    client = _bearer(issued.raw_key)
    escalate = client.post("/api/v1/api-keys", {"name": "wide", "scopes": ["*"]}, format="json")
    assert escalate.status_code == 403 and escalate.json()["error"]["code"] == "scope_escalation"
    write = client.post("/api/v1/api-keys", {"name": "w", "scopes": ["sessions:write"]}, format="json")
    assert write.status_code == 403
    narrower = client.post("/api/v1/api-keys", {"name": "ro", "scopes": ["sessions:read"]}, format="json")
    assert narrower.status_code == 201


# --- webhooks --------------------------------------------------------------------------------


def test_webhook_secret_is_shown_once_and_stored_encrypted(owner):
    client = client_as(owner)
    response = client.post(
        "/api/v1/webhooks",
        {
            "name": "Orders",
            "url": "https://hooks.example.com/in",
            "events": ["order.paid", "order.paid", "invoice.issued"],
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    secret = body["secret"]
    assert secret.startswith("whsec_") and len(base64.b64decode(secret.removeprefix("whsec_"))) == 24
    assert body["events"] == ["invoice.issued", "order.paid"]
    assert body["user"] == str(owner.pk)

    webhook = Webhook.objects.get(pk=body["id"])
    assert webhook.organization == owner.organization and webhook.user == owner
    assert secret not in webhook.secret_encrypted
    assert crypto.decrypt(webhook.secret_encrypted) == secret
    assert webhook.secret_hash == crypto.hash_secret(secret)

    listed = client.get("/api/v1/webhooks")
    detail = client.get(f"/api/v1/webhooks/{webhook.pk}")
    updated = client.patch(f"/api/v1/webhooks/{webhook.pk}", {"status": "paused"}, format="json")
    assert updated.status_code == 200 and updated.json()["status"] == "paused"
    for answer in (listed, detail, updated):
        text = answer.content.decode()
        assert secret not in text and webhook.secret_encrypted not in text
        assert "secret" not in text and "previous_secret" not in text


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"events": ["order.shipped"]}, "events"),
        ({"events": []}, "events"),
        ({"url": "ftp://files.example.com/hook"}, "url"),
        ({"url": "not a url"}, "url"),
    ],
)
def test_invalid_webhooks_are_400(owner, payload, field):
    body = {"name": "Hook", "url": "https://hooks.example.com/in", "events": ["*"], **payload}
    response = client_as(owner).post("/api/v1/webhooks", body, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["details"]
    assert not Webhook.objects.exists()


def test_only_owners_and_admins_manage_webhooks(owner):
    member = f.UserFactory(organization=owner.organization, role=User.Role.MEMBER)
    f.WebhookFactory(organization=owner.organization, user=owner)
    assert client_as(member).get("/api/v1/webhooks").status_code == 403
    body = {"name": "Hook", "url": "https://hooks.example.com/in", "events": ["*"]}
    assert client_as(member).post("/api/v1/webhooks", body, format="json").status_code == 403


def test_reenabling_a_disabled_webhook_clears_its_failure_state(owner):
    webhook = f.WebhookFactory(organization=owner.organization, user=owner, status="disabled", disabled_reason="410")
    client = client_as(owner)
    unchanged = client.patch(f"/api/v1/webhooks/{webhook.pk}", {"status": "disabled"}, format="json")
    assert unchanged.status_code == 200  # sending the current status back is not a change
    response = client.patch(f"/api/v1/webhooks/{webhook.pk}", {"status": "active"}, format="json")
    assert response.status_code == 200
    assert response.json()["status"] == "active" and response.json()["disabled_reason"] == ""
    assert client.patch(f"/api/v1/webhooks/{webhook.pk}", {"status": "disabled"}, format="json").status_code == 400


def test_webhook_deliveries_filter_and_page_by_cursor(owner):
    hook = f.WebhookFactory(organization=owner.organization, user=owner)
    other_hook = f.WebhookFactory(organization=owner.organization, user=owner)
    failed = f.WebhookDeliveryFactory(webhook=hook, status="failed", event_type="order.paid")
    f.WebhookDeliveryFactory(webhook=hook, status="succeeded", event_type="invoice.issued")
    f.WebhookDeliveryFactory(webhook=other_hook, status="failed")
    client = client_as(owner)

    rows = _rows(client.get(f"/api/v1/webhook-deliveries?webhook={hook.pk}&status=failed"))
    assert [row["id"] for row in rows] == [str(failed.pk)]
    assert len(_rows(client.get("/api/v1/webhook-deliveries?event_type=invoice.issued"))) == 1
    page = client.get("/api/v1/webhook-deliveries?page_size=2").json()
    assert len(page["results"]) == 2 and page["next"] and "count" not in page


# --- system config ---------------------------------------------------------------------------


def test_sensitive_config_values_are_masked_everywhere(staff):
    client = client_as(staff)
    created = client.post(
        "/api/v1/system-config",
        {"key": "payments.stripe_webhook_secret", "value": "whsec_live", "is_sensitive": True},
        format="json",
    )
    assert created.status_code == 201, created.content
    assert created.json()["value"] == MASK
    plain = f.SystemConfigFactory(key="billing.grace_days", value=7)

    rows = {row["key"]: row["value"] for row in _rows(client.get("/api/v1/system-config"))}
    assert rows == {"payments.stripe_webhook_secret": MASK, "billing.grace_days": 7}
    detail = client.get("/api/v1/system-config/payments.stripe_webhook_secret")
    assert detail.status_code == 200 and detail.json()["value"] == MASK
    assert "whsec_live" not in detail.content.decode()
    assert client.get(f"/api/v1/system-config/{plain.key}").json()["value"] == 7
    assert SystemConfig.objects.get(key="payments.stripe_webhook_secret").value == "whsec_live"


def test_config_update_without_value_keeps_it(staff):
    config = f.SystemConfigFactory(key="ai.openai.org", value={"id": "org-1"}, is_sensitive=True)
    client = client_as(staff)
    url = f"/api/v1/system-config/{config.key}"

    patched = client.patch(url, {"description": "OpenAI organization"}, format="json")
    assert patched.status_code == 200 and patched.json()["value"] == MASK
    put = client.put(url, {"description": "Org id", "is_sensitive": True}, format="json")
    assert put.status_code == 200
    echoed = client.put(url, {"value": MASK, "description": "Org id", "is_sensitive": True}, format="json")
    assert echoed.status_code == 200
    config.refresh_from_db()
    assert config.value == {"id": "org-1"} and config.description == "Org id"
    assert config.updated_by == staff

    assert client.patch(url, {"value": {"id": "org-2"}}, format="json").status_code == 200
    config.refresh_from_db()
    assert config.value == {"id": "org-2"}


def test_config_key_is_fixed_and_validated(staff):
    config = f.SystemConfigFactory(key="limits.max_batch")
    client = client_as(staff)
    response = client.patch(f"/api/v1/system-config/{config.key}", {"key": "renamed", "value": 5}, format="json")
    assert response.status_code == 200 and response.json()["key"] == "limits.max_batch"
    assert not SystemConfig.objects.filter(key="renamed").exists()

    assert client.post("/api/v1/system-config", {"key": "bad/key", "value": 1}, format="json").status_code == 400
    nul = client.post("/api/v1/system-config", {"key": "x.nul", "value": {"a": ["\u0000"]}}, format="json")
    assert nul.status_code == 400 and nul.json()["error"]["code"] == "malformed_request"  # jsonb cannot store U+0000
    duplicate = client.post("/api/v1/system-config", {"key": "limits.max_batch", "value": 1}, format="json")
    assert duplicate.status_code in (400, 409)
    assert client.delete(f"/api/v1/system-config/{config.key}").status_code == 204
    assert client.get(f"/api/v1/system-config/{config.key}").status_code == 404


# --- feature flags ---------------------------------------------------------------------------


def test_feature_flags_are_validated(staff):
    client = client_as(staff)
    too_many = client.post(
        "/api/v1/feature-flags",
        {"flag_key": "new-ui", "target_type": "percentage", "target_percentage": 101},
        format="json",
    )
    assert too_many.status_code == 400 and "target_percentage" in too_many.json()["error"]["details"]

    org_id = uuid.uuid4()
    created = client.post(
        "/api/v1/feature-flags",
        {"flag_key": "new-ui", "is_enabled": True, "target_type": "organizations", "target_ids": [str(org_id)] * 2},
        format="json",
    )
    assert created.status_code == 201, created.content
    assert FeatureFlag.objects.get(flag_key="new-ui").target_ids == [str(org_id)]
    bad_ids = client.patch(f"/api/v1/feature-flags/{created.json()['id']}", {"target_ids": ["x"]}, format="json")
    assert bad_ids.status_code == 400
    duplicate = client.post("/api/v1/feature-flags", {"flag_key": "new-ui"}, format="json")
    assert duplicate.status_code == 400
