"""Sessions: a row per login, revocation logs the session out at once, revoke-all-others, cleanup."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from celaest import crypto
from settings_app.models import UserSession
from settings_app.services import sessions
from tests import factories as f

pytestmark = pytest.mark.django_db


def _logged_in(user, agent="Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0") -> Client:
    client = Client(HTTP_USER_AGENT=agent)
    client.force_login(user)
    return client


def test_a_login_records_a_hashed_session():
    user = f.UserFactory()
    client = _logged_in(user)
    session_key = client.session.session_key
    row = UserSession.objects.get(user=user)
    assert row.session_token == crypto.hash_secret(session_key) and session_key not in row.session_token
    assert row.is_active and row.expires_at > timezone.now()


def test_a_real_login_keeps_ip_agent_and_device():
    user = f.UserFactory(email="grace@example.com", is_staff=True)
    client = Client(HTTP_USER_AGENT="Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0")
    login = client.post(reverse("admin:login"), {"username": "grace@example.com", "password": f.DEFAULT_PASSWORD})
    assert login.status_code == 302
    row = UserSession.objects.get(user=user)
    assert row.ip_address == "127.0.0.1" and "Firefox" in row.user_agent
    assert row.device_info == {"browser": "Firefox", "os": "Linux", "mobile": False}


def test_a_revoked_session_is_logged_out_at_once():
    user = f.UserFactory()
    phone = _logged_in(user, agent="iPhone")
    laptop = _logged_in(user)
    assert phone.get("/api/v1/sessions").status_code == 200
    phone_row = UserSession.objects.get(session_token=crypto.hash_secret(phone.session.session_key))

    assert laptop.delete(f"/api/v1/sessions/{phone_row.pk}").status_code == 204
    assert phone.get("/api/v1/sessions").status_code in (401, 403)  # logged out on its next request
    assert laptop.get("/api/v1/sessions").status_code == 200


def test_revocation_is_seen_even_without_the_cache_marker():
    user = f.UserFactory()
    client = _logged_in(user)
    token = crypto.hash_secret(client.session.session_key)
    UserSession.objects.filter(session_token=token).update(is_active=False, revoked_at=timezone.now())
    from django.core.cache import cache

    cache.clear()  # no marker, no recent touch: the throttled write finds the row revoked
    assert client.get("/api/v1/sessions").status_code in (401, 403)


def test_revoke_all_other_sessions_keeps_this_one():
    user = f.UserFactory()
    others = [_logged_in(user) for _ in range(2)]
    me = _logged_in(user)
    stranger_session = f.UserSessionFactory()
    response = me.post("/api/v1/sessions/revoke-others")
    assert response.status_code == 200 and response.json() == {"revoked": 2}
    for client in others:
        assert client.get("/api/v1/sessions").status_code in (401, 403)
    assert me.get("/api/v1/sessions").status_code == 200
    stranger_session.refresh_from_db()
    assert stranger_session.is_active


def test_logout_ends_the_session_row():
    user = f.UserFactory(is_staff=True)
    client = _logged_in(user)
    token = crypto.hash_secret(client.session.session_key)
    client.post(reverse("admin:logout"))
    row = UserSession.objects.get(session_token=token)
    assert not row.is_active and row.revoked_at is not None


def test_cleanup_deletes_long_ended_sessions_and_closes_expired_ones():
    now = timezone.now()
    old = f.UserSessionFactory(expires_at=now - timedelta(days=40), is_active=False)
    expired = f.UserSessionFactory(expires_at=now - timedelta(hours=1))
    live = f.UserSessionFactory()
    assert sessions.user_sessions_clean_expired() == 1
    assert not UserSession.objects.filter(pk=old.pk).exists()
    expired.refresh_from_db()
    live.refresh_from_db()
    assert not expired.is_active and live.is_active
