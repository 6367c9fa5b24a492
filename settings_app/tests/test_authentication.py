"""API key authentication: hashed at rest, revocation and expiry, the shared rpm limit, usage."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from celaest import ratelimit
from settings_app.models import UserApiKey
from settings_app.services.api_keys import api_key_create, api_key_revoke, api_key_usage_flush
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _client(raw_key):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    return client


def test_key_is_random_prefixed_and_stored_only_as_a_hash():
    issued = api_key_create(user=UserFactory(), name="ci")
    assert issued.raw_key.startswith("cel_") and len(issued.raw_key) >= 4 + 43  # 256 bits, base64url
    row = UserApiKey.objects.get(pk=issued.api_key.pk)
    stored = " ".join(str(value) for value in UserApiKey.objects.filter(pk=row.pk).values().first().values())
    assert issued.raw_key not in stored
    assert row.key_prefix == issued.raw_key[:12]
    assert api_key_create(user=row.user, name="other").raw_key != issued.raw_key


def test_key_authenticates_as_its_user():
    user = UserFactory()
    response = _client(api_key_create(user=user, name="ci").raw_key).get("/api/v1/me")
    assert response.status_code == 200
    assert response.json()["email"] == user.email


@pytest.mark.parametrize("token", ["cel_not-a-real-key", "cel_"])
def test_unknown_key_is_401(token):
    response = _client(token).get("/api/v1/me")
    assert response.status_code == 401
    assert response.json()["error"]["code"] in ("authentication_failed", "not_authenticated")


def test_an_address_presenting_too_many_unknown_keys_is_429_for_the_minute_while_valid_keys_still_work(
    settings, monkeypatch
):
    settings.API_KEY_FAILURES_PER_MINUTE = 3
    now = 1_800_000_000.0  # the start of a one-minute window
    monkeypatch.setattr(ratelimit.time, "time", lambda: now)
    guesser, neighbour = APIClient(REMOTE_ADDR="203.0.113.7"), APIClient(REMOTE_ADDR="203.0.113.8")
    codes = [guesser.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer cel_guess{n}").status_code for n in range(5)]
    assert codes == [401, 401, 401, 429, 429]
    refused = guesser.get("/api/v1/me", HTTP_AUTHORIZATION="Bearer cel_guess9")
    assert refused.json()["error"]["code"] == "rate_limited" and 1 <= int(refused["Retry-After"]) <= 60
    assert neighbour.get("/api/v1/me", HTTP_AUTHORIZATION="Bearer cel_other").status_code == 401
    valid = api_key_create(user=UserFactory(), name="ci").raw_key
    assert guesser.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {valid}").status_code == 200
    now += 60  # next window
    assert guesser.get("/api/v1/me", HTTP_AUTHORIZATION="Bearer cel_guess10").status_code == 401


def test_revoked_key_is_refused():
    issued = api_key_create(user=UserFactory(), name="ci")
    api_key_revoke(api_key=issued.api_key)
    response = _client(issued.raw_key).get("/api/v1/me")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"
    assert UserApiKey.objects.filter(pk=issued.api_key.pk).exists()


def test_expired_key_is_refused():
    issued = api_key_create(user=UserFactory(), name="ci", expires_in_days=1)
    UserApiKey.objects.filter(pk=issued.api_key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert _client(issued.raw_key).get("/api/v1/me").status_code == 401


def test_key_of_a_deactivated_user_is_refused():
    user = UserFactory()
    issued = api_key_create(user=user, name="ci")
    user.is_active = False
    user.save()
    assert _client(issued.raw_key).get("/api/v1/me").status_code == 401


def test_rpm_limit_answers_429_with_retry_after_and_recovers(monkeypatch):
    issued = api_key_create(user=UserFactory(), name="ci", rate_limit_rpm=3)
    client = _client(issued.raw_key)
    now = 1_800_000_000.0  # the start of a one-minute window
    monkeypatch.setattr(ratelimit.time, "time", lambda: now)
    assert [client.get("/api/v1/me").status_code for _ in range(3)] == [200, 200, 200]
    limited = client.get("/api/v1/me")
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(limited["Retry-After"]) <= 60
    now += 60  # next window
    assert client.get("/api/v1/me").status_code == 200


def test_usage_is_counted_without_a_write_per_request():
    issued = api_key_create(user=UserFactory(), name="ci")
    client = _client(issued.raw_key)
    for _ in range(5):
        assert client.get("/api/v1/me").status_code == 200
    issued.api_key.refresh_from_db()
    assert issued.api_key.usage_count == 1  # the first use is written at once, the rest batched
    assert issued.api_key.last_used_at is not None
    assert api_key_usage_flush(api_key_id=issued.api_key.pk) == 4
    issued.api_key.refresh_from_db()
    assert issued.api_key.usage_count == 5


@pytest.mark.parametrize("scopes", [["licenses:delete"], ["nocolon"], [":read"]])
def test_invalid_scopes_are_refused(scopes):
    from celaest.errors import InvalidInput

    with pytest.raises(InvalidInput):
        api_key_create(user=UserFactory(), name="ci", scopes=scopes)


def test_periodic_flush_writes_pending_uses_of_recent_keys():
    from settings_app.tasks import flush_api_key_usage

    issued = api_key_create(user=UserFactory(), name="ci")
    client = _client(issued.raw_key)
    for _ in range(3):
        client.get("/api/v1/me")
    assert flush_api_key_usage() == 2
    issued.api_key.refresh_from_db()
    assert issued.api_key.usage_count == 3
