"""The license token credential (``Authorization: License clt_...``): installed software managing
its own machine. Like the license key of the public endpoints it is no user's credential, so the
views that take it read it themselves (no DRF authenticator: a user's key sent along changes
nothing)."""

from rest_framework import authentication, exceptions

from .models import LicenseToken
from .selectors import license_token_lookup
from .services import license_token_record_use

KEYWORD = "License"


def license_token_from_request(request) -> LicenseToken:
    """The usable license token the request carries; raises ``NotAuthenticated`` without one and
    ``AuthenticationFailed`` for an unknown, expired or revoked one."""
    header = authentication.get_authorization_header(request).split()
    if not header or header[0].decode(errors="replace") != KEYWORD:
        raise exceptions.NotAuthenticated(f"Send Authorization: {KEYWORD} <token>.")
    token = license_token_lookup(raw=header[1].decode(errors="replace")) if len(header) == 2 else None
    if token is None:
        raise exceptions.AuthenticationFailed("Unknown, expired or revoked license token.")
    license_token_record_use(token=token)
    return token
