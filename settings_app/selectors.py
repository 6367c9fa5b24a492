"""Reads for per-user security records."""

from django.utils import timezone

from celaest import crypto

from .models import UserApiKey


def api_key_get_usable(*, raw_key: str) -> UserApiKey | None:
    """The live key matching ``raw_key`` (not revoked, not expired, active user), or None."""
    api_key = (
        UserApiKey.objects.select_related("user", "user__organization")
        .filter(key_hash=crypto.hash_secret(raw_key))
        .first()
    )
    if api_key is None or not api_key.is_usable(timezone.now()):
        return None
    if not api_key.user.is_active or api_key.user.deleted_at is not None:
        return None
    return api_key
