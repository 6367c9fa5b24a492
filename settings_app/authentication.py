"""DRF authentication, both ways in: ``Authorization: Bearer <credential>``.

**User API keys** (``cel_...``): looked up by hash; each key's ``rate_limit_rpm`` is enforced on
the shared cache across every server process, answering 429 with ``Retry-After``. A client
address presenting more than ``API_KEY_FAILURES_PER_MINUTE`` unknown keys in a minute is answered
429 instead of 401 for the rest of the minute (counted on failures only: a valid key costs no
extra round trip).

**Supabase JWTs** whose ``sub`` is the ``users_profile.id``: HS256 tokens are checked with
``SUPABASE_JWT_SECRET``; asymmetric tokens (RS256, ES256, EdDSA) with the signing keys served at
``SUPABASE_JWKS_URL`` (fetched once and cached). Audience and expiry are always checked. The
algorithm family is fixed by which key is configured, so a token cannot pick its own
verification method.

Both live here, in settings_app, because API keys are settings_app's rows and identity (the
bottom layer) cannot import them; the JWT side needs only identity's ``User``.
"""

import uuid
from functools import lru_cache

import jwt
from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from celaest.net import client_ip
from celaest.ratelimit import rate_limit_hit
from identity.models import User

from .selectors import api_key_get_usable
from .services.api_keys import API_KEY_PREFIX, api_key_record_use


def bearer_token(request) -> str | None:
    header = authentication.get_authorization_header(request).decode("latin-1")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


# --- user API keys ---------------------------------------------------------------------------


class ApiKeyAuthentication(authentication.BaseAuthentication):
    def credential(self, request) -> str | None:
        return bearer_token(request)

    def authenticate(self, request):
        token = self.credential(request)
        if token is None or not token.startswith(API_KEY_PREFIX):
            return None
        api_key = api_key_get_usable(raw_key=token)
        if api_key is None:
            guesses = rate_limit_hit(
                key=f"apikey-fail:{client_ip(request)}", limit=settings.API_KEY_FAILURES_PER_MINUTE
            )
            if not guesses.allowed:
                raise exceptions.Throttled(
                    wait=guesses.retry_after, detail="Too many invalid API keys from this address."
                )
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked API key.")
        decision = rate_limit_hit(key=f"apikey:{api_key.pk}", limit=api_key.rate_limit_rpm)
        if not decision.allowed:
            raise exceptions.Throttled(wait=decision.retry_after, detail="API key rate limit exceeded.")
        api_key_record_use(api_key=api_key, ip_address=request.META.get("REMOTE_ADDR"))
        # Not audited here: authentication cannot know whether the write will change anything
        # (a 404 or 405 added a row). The audit row of each change names the key (``via_key``).
        return api_key.user, api_key

    def authenticate_header(self, request):
        return 'Bearer realm="api"'


class ApiKeyHeaderAuthentication(ApiKeyAuthentication):
    """A user API key in ``x-api-key`` (as Anthropic's SDK sends it), else as a bearer token."""

    def credential(self, request) -> str | None:
        return request.META.get("HTTP_X_API_KEY") or bearer_token(request)

    def authenticate_header(self, request):
        return "x-api-key"


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = ApiKeyAuthentication
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "A CELAEST user API key (cel_...)."}


class ApiKeyHeaderAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = ApiKeyHeaderAuthentication
    name = "apiKeyHeader"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "x-api-key", "description": "A CELAEST user API key."}


# --- Supabase JWTs ---------------------------------------------------------------------------

_ASYMMETRIC_ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "EdDSA")


@lru_cache(maxsize=4)
def _jwks_client(url: str) -> jwt.PyJWKClient:
    return jwt.PyJWKClient(url, cache_keys=True, lifespan=settings.SUPABASE_JWKS_CACHE_SECONDS, timeout=5)


def _signing_key(token: str, algorithm: str):
    if algorithm == "HS256":
        if not settings.SUPABASE_JWT_SECRET:
            raise exceptions.AuthenticationFailed("HS256 tokens are not accepted.")
        return settings.SUPABASE_JWT_SECRET
    if algorithm in _ASYMMETRIC_ALGORITHMS:
        if not settings.SUPABASE_JWKS_URL:
            raise exceptions.AuthenticationFailed("Asymmetric tokens are not accepted.")
        try:
            return _jwks_client(settings.SUPABASE_JWKS_URL).get_signing_key_from_jwt(token).key
        except jwt.PyJWKClientError as exc:
            raise exceptions.AuthenticationFailed("Token signing key is unknown.") from exc
    raise exceptions.AuthenticationFailed("Token algorithm is not accepted.")


def supabase_decode(token: str) -> dict:
    """Verify ``token`` and return its claims, or raise AuthenticationFailed."""
    try:
        algorithm = jwt.get_unverified_header(token).get("alg", "")
    except jwt.InvalidTokenError as exc:
        raise exceptions.AuthenticationFailed("Malformed token.") from exc
    key = _signing_key(token, algorithm)
    options = {"require": ["exp", "sub", "aud"]}
    try:
        return jwt.decode(
            token,
            key,
            algorithms=[algorithm],
            audience=settings.SUPABASE_JWT_AUDIENCE,
            issuer=settings.SUPABASE_JWT_ISSUER or None,
            options=options,
            leeway=30,
        )
    except jwt.ExpiredSignatureError as exc:
        raise exceptions.AuthenticationFailed("Token has expired.") from exc
    except jwt.InvalidTokenError as exc:
        raise exceptions.AuthenticationFailed("Invalid token.") from exc


class SupabaseJWTAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        token = bearer_token(request)
        if token is None or token.count(".") != 2:
            return None
        if not (settings.SUPABASE_JWT_SECRET or settings.SUPABASE_JWKS_URL):
            return None
        claims = supabase_decode(token)
        try:
            user_id = uuid.UUID(str(claims["sub"]))
        except ValueError as exc:
            raise exceptions.AuthenticationFailed("Token subject is not a user id.") from exc
        user = User.objects.select_related("organization").filter(pk=user_id, is_active=True).first()
        if user is None:
            raise exceptions.AuthenticationFailed("Unknown or inactive user.")
        return user, None

    def authenticate_header(self, request):
        return 'Bearer realm="api"'


class SupabaseJWTAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = SupabaseJWTAuthentication
    name = "supabaseJWT"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": "A Supabase access token."}
