"""Supabase JWT authentication: HS256 with the project secret, asymmetric keys from a JWKS."""

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from rest_framework.test import APIClient

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

SECRET = "super-secret-jwt-token-with-at-least-32-characters-long"


@pytest.fixture
def hs256(settings):
    settings.SUPABASE_JWT_SECRET = SECRET
    settings.SUPABASE_JWT_AUDIENCE = "authenticated"


def _claims(user_id, **overrides):
    now = int(time.time())
    return {"sub": str(user_id), "aud": "authenticated", "exp": now + 3600, "iat": now, "role": "authenticated"} | (
        overrides
    )


def _get_me(token):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client.get("/api/v1/me")


def test_valid_hs256_token_authenticates(hs256):
    user = UserFactory()
    response = _get_me(jwt.encode(_claims(user.id), SECRET, algorithm="HS256"))
    assert response.status_code == 200
    assert response.json()["id"] == str(user.id)


@pytest.mark.parametrize(
    "overrides",
    [{"exp": int(time.time()) - 120}, {"aud": "someone-else"}, {"sub": str(uuid.uuid4())}, {"sub": "not-a-uuid"}],
    ids=["expired", "wrong-audience", "unknown-user", "bad-subject"],
)
def test_bad_hs256_tokens_are_401(hs256, overrides):
    user = UserFactory()
    response = _get_me(jwt.encode(_claims(user.id, **overrides), SECRET, algorithm="HS256"))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


def test_tampered_token_is_401(hs256):
    user, other = UserFactory(), UserFactory()
    header, payload, signature = jwt.encode(_claims(user.id), SECRET, algorithm="HS256").split(".")
    forged_payload = jwt.encode(_claims(other.id), "x" * 40, algorithm="HS256").split(".")[1]
    assert _get_me(f"{header}.{forged_payload}.{signature}").status_code == 401
    wrong_secret = jwt.encode(_claims(user.id), "another-secret-of-enough-length-0123", algorithm="HS256")
    assert _get_me(wrong_secret).status_code == 401


def test_unsigned_token_is_401(hs256):
    user = UserFactory()
    assert _get_me(jwt.encode(_claims(user.id), None, algorithm="none")).status_code == 401


@pytest.fixture
def jwks_server(settings):
    """A local JWKS endpoint, like Supabase's /auth/v1/.well-known/jwks.json."""
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private_key.public_key()))
    public_jwk.update({"kid": "test-key-1", "alg": "RS256", "use": "sig"})
    body = json.dumps({"keys": [public_jwk]}).encode()
    hits = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server API
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.SUPABASE_JWT_SECRET = ""
    settings.SUPABASE_JWKS_URL = f"http://127.0.0.1:{server.server_port}/auth/v1/.well-known/jwks.json"
    yield private_key, hits
    server.shutdown()


def test_token_signed_by_a_jwks_key_authenticates_and_keys_are_cached(jwks_server):
    private_key, hits = jwks_server
    user = UserFactory()
    token = jwt.encode(_claims(user.id), private_key, algorithm="RS256", headers={"kid": "test-key-1"})
    assert _get_me(token).status_code == 200
    assert _get_me(token).status_code == 200
    assert len(hits) == 1  # the JWKS is fetched once and cached


def test_token_signed_by_an_unknown_key_is_401(jwks_server):
    user = UserFactory()
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode(_claims(user.id), stranger, algorithm="RS256", headers={"kid": "test-key-1"})
    assert _get_me(token).status_code == 401


def test_hs256_is_refused_when_only_jwks_is_configured(jwks_server):
    user = UserFactory()
    assert _get_me(jwt.encode(_claims(user.id), "x" * 40, algorithm="HS256")).status_code == 401
