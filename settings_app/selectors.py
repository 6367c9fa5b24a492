"""Reads for per-user security records, webhooks and what API key scopes may name."""

import copy

from django.db.models import QuerySet
from django.urls import URLResolver, get_resolver
from django.utils import timezone

from celaest import crypto
from celaest.readcache import ReadCache
from identity.models import Organization, User

from .models import UserApiKey, UserSession, Webhook, WebhookDelivery

#: API keys with their user and organization, by key hash: read on every API key request.
#: (use counts, written at most once a minute per key, do not retire it)
_api_keys = (
    ReadCache("api-keys")
    .watch(UserApiKey, unseen_fields=("usage_count", "last_used_at", "last_used_ip"))
    .watch(User, Organization)
)


def api_key_get_usable(*, raw_key: str) -> UserApiKey | None:
    """The live key matching ``raw_key`` (not revoked, not expired, active user), or None.
    The key and its user are this request's own copies (the process keeps the shared ones)."""
    key_hash = crypto.hash_secret(raw_key)
    shared = _api_keys.get(
        key_hash,
        lambda: UserApiKey.objects.select_related("user", "user__organization").filter(key_hash=key_hash).first(),
    )
    if shared is None or not shared.is_usable(timezone.now()):
        return None
    if not shared.user.is_active or shared.user.deleted_at is not None:
        return None
    api_key = copy.copy(shared)
    api_key.user = copy.copy(shared.user)
    if shared.user.organization is not None:
        api_key.user.organization = copy.copy(shared.user.organization)
    return api_key


def user_session_list() -> QuerySet[UserSession]:
    return UserSession.objects.all()


def user_session_is_current(*, session: UserSession, session_key: str | None) -> bool:
    """Whether ``session`` is the login making this request (``session_token`` hashes the key)."""
    return bool(session_key) and crypto.secrets_match(session_key, session.session_token)


def webhook_list() -> QuerySet[Webhook]:
    return Webhook.objects.all()


def webhook_delivery_list() -> QuerySet[WebhookDelivery]:
    return WebhookDelivery.objects.all()


def api_scope_resources() -> frozenset[str]:
    """Every resource an API key scope can name: the ``scope_resource`` of each API view routed
    in the URL configuration (read from the routes, so a new endpoint is scopable at once)."""
    resources = set()

    def walk(patterns):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns)
                continue
            view_class = getattr(pattern.callback, "cls", None)
            resource = getattr(view_class, "scope_resource", "")
            if resource:
                resources.add(resource)

    walk(get_resolver().url_patterns)
    return frozenset(resources)
