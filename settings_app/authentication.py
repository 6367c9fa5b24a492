"""DRF authentication by user API key: ``Authorization: Bearer cel_...``.

Keys are looked up by hash; each key's ``rate_limit_rpm`` is enforced on the shared cache across
every server process, answering 429 with ``Retry-After``. A client address presenting more than
``API_KEY_FAILURES_PER_MINUTE`` unknown keys in a minute is answered 429 instead of 401 for the
rest of the minute (counted on failures only: a valid key costs no extra round trip).
"""

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from celaest.net import client_ip
from celaest.ratelimit import rate_limit_hit

from .selectors import api_key_get_usable
from .services import API_KEY_PREFIX, api_key_record_use


def bearer_token(request) -> str | None:
    header = authentication.get_authorization_header(request).decode("latin-1")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


class ApiKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        token = bearer_token(request)
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


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = ApiKeyAuthentication
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "A CELAEST user API key (cel_...)."}
