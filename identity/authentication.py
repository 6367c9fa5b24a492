"""DRF authentication by Supabase JWT: ``Authorization: Bearer <jwt>`` whose ``sub`` is the
``users_profile.id``.

HS256 tokens are checked with ``SUPABASE_JWT_SECRET``; asymmetric tokens (RS256, ES256, EdDSA)
with the signing keys served at ``SUPABASE_JWKS_URL`` (fetched once and cached). Audience and
expiry are always checked. The algorithm family is fixed by which key is configured, so a token
cannot pick its own verification method.
"""

import uuid
from functools import lru_cache

import jwt
from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from .models import User

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
        header = authentication.get_authorization_header(request).decode("latin-1")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or token.count(".") != 2:
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
