"""Security baseline: deploy checks, headers and CSP, Argon2, login throttling, CSRF, lint."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from rest_framework.test import APIClient

from identity.models import User
from ipcontrol.certificates import signing_key_generate
from tests.factories import OrganizationFactory, StaffUserFactory, UserFactory

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct-horse-battery-staple"


def _run(args, **env):
    return subprocess.run(args, cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=300)


def test_deploy_checks_are_clean_with_production_settings(tmp_path):
    result = _run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        DJANGO_SETTINGS_MODULE="celaest.settings.production",
        SECRET_KEY="x" * 20 + "-Production-Secret-Key-Of-Enough-Length-0123456789",
        ALLOWED_HOSTS="celaest.example.com",
        FIELD_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        LICENSE_SIGNING_KEYS=signing_key_generate(),
        EMAIL_URL="smtp+tls://billing:secret@smtp.example.com:587",
        CELAEST_VAR_DIR=str(tmp_path),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_passwords_are_hashed_with_argon2_outside_tests(tmp_path):
    code = "import django; django.setup(); from django.conf import settings; print(settings.PASSWORD_HASHERS[0])"
    result = _run(
        [sys.executable, "-c", code], DJANGO_SETTINGS_MODULE="celaest.settings", CELAEST_VAR_DIR=str(tmp_path)
    )
    assert result.stdout.strip() == "django.contrib.auth.hashers.Argon2PasswordHasher", result.stderr


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/admin/login/", "/api/docs/", "/api/redoc/", "/api/v1/me"])
def test_security_headers(client, path):
    response = client.get(path)
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/docs/", "/api/redoc/"])
def test_docs_have_no_inline_script_and_no_third_party_assets(client, path):
    html = client.get(path).content.decode()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline script would be blocked by the CSP"
    assert "googleapis" not in html and "cdn" not in html.lower()
    if path == "/api/docs/":
        script = re.search(r'<script src="([^"]*\?script[^"]*)"', html).group(1).replace("&amp;", "&")
        assert client.get(script).status_code == 200


@pytest.mark.django_db
def test_admin_login_locks_after_repeated_failures(client, settings):
    settings.LOGIN_FAILURE_LIMIT = 5
    StaffUserFactory(email="ops@example.com")
    for _ in range(5):
        response = client.post("/admin/login/", {"username": "ops@example.com", "password": "wrong"})
        assert response.status_code == 200  # the form again, with an error
    client.post("/admin/login/", {"username": "ops@example.com", "password": PASSWORD})
    assert "_auth_user_id" not in client.session  # the right password no longer opens it
    StaffUserFactory(email="other@example.com")
    client.post("/admin/login/", {"username": "other@example.com", "password": PASSWORD})
    assert "_auth_user_id" in client.session  # another account from the same address is not locked


@pytest.mark.django_db
def test_login_throttling_per_address_sees_the_client_behind_a_trusted_proxy(client, settings):
    """Behind the deployment's reverse proxy every login comes from the proxy's address: counting
    failures per that address would lock everyone out after one person's mistakes."""
    settings.LOGIN_FAILURE_LIMIT, settings.LOGIN_FAILURE_LIMIT_PER_IP = 100, 3
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    for email in ("ops@example.com", "other@example.com"):
        StaffUserFactory(email=email)
    proxied = {"REMOTE_ADDR": "10.0.0.2"}
    for _ in range(3):
        client.post(
            "/admin/login/",
            {"username": "ops@example.com", "password": "x"},
            HTTP_X_FORWARDED_FOR="198.51.100.7",
            **proxied,
        )
    client.post(
        "/admin/login/",
        {"username": "other@example.com", "password": PASSWORD},
        HTTP_X_FORWARDED_FOR="198.51.100.7",
        **proxied,
    )
    assert "_auth_user_id" not in client.session  # that client's address is locked
    client.post(
        "/admin/login/",
        {"username": "other@example.com", "password": PASSWORD},
        HTTP_X_FORWARDED_FOR="203.0.113.9",
        **proxied,
    )
    assert "_auth_user_id" in client.session  # another client through the same proxy is not


@pytest.mark.django_db
def test_session_authenticated_writes_need_the_csrf_token():
    owner = UserFactory(organization=OrganizationFactory(max_users=10), role=User.Role.OWNER)
    client = APIClient(enforce_csrf_checks=True)
    client.login(email=owner.email, password=PASSWORD)
    refused = client.post("/api/v1/members", {"email": "new@example.com"}, format="json")
    assert refused.status_code == 403 and "CSRF" in refused.json()["error"]["message"]
    client.get("/admin/login/")  # sets the csrftoken cookie
    token = client.cookies["csrftoken"].value
    accepted = client.post("/api/v1/members", {"email": "new@example.com"}, format="json", HTTP_X_CSRFTOKEN=token)
    assert accepted.status_code == 202  # an invitation (identity.services.member_invite)


def test_ruff_is_clean_with_the_committed_configuration():
    ruff = Path(sys.executable).with_name("ruff")
    result = subprocess.run([str(ruff), "check", "."], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout
