"""Webhook endpoints: registered with a signing secret (returned once, stored encrypted),
changed, removed, and their secret rotated with a grace period. Delivering events to them is
the outbox's work (``outbox``)."""

import base64
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from celaest import crypto
from celaest.errors import InvalidInput
from identity.models import Organization, User
from settings_app.models import Webhook
from settings_app.webhook_targets import webhook_target_check

from .outbox import ALL_EVENTS, WEBHOOK_SUBSCRIBABLE

WEBHOOK_SECRET_PREFIX = "whsec_"  # noqa: S105 - a public prefix, not a secret
_WEBHOOK_SECRET_BYTES = 24
_WEBHOOK_SETTABLE_STATUSES = (Webhook.Status.ACTIVE, Webhook.Status.PAUSED)
WEBHOOK_MAX_GRACE_HOURS = 7 * 24


@dataclass(frozen=True)
class CreatedWebhook:
    webhook: Webhook
    secret: str  # shown once; stored encrypted


def webhook_secret_generate() -> str:
    """A Standard Webhooks signing secret: ``whsec_`` + base64 of random bytes."""
    return WEBHOOK_SECRET_PREFIX + base64.b64encode(secrets.token_bytes(_WEBHOOK_SECRET_BYTES)).decode()


def _validate_webhook_url(url: str) -> str:
    webhook_target_check(url, require_resolution=False)  # the SSRF guard; again at every delivery
    return url


def _validate_webhook_events(events: list[str]) -> list[str]:
    if not events:
        raise InvalidInput("Subscribe to at least one event.", details={"events": ["This list may not be empty."]})
    unknown = sorted({event for event in events if event not in WEBHOOK_SUBSCRIBABLE})
    if unknown:
        raise InvalidInput(
            "Unknown webhook events.", details={"events": [f"Unknown event: {event}" for event in unknown]}
        )
    return [ALL_EVENTS] if ALL_EVENTS in events else sorted(set(events))


def _validate_webhook_status(status: str) -> str:
    if status not in _WEBHOOK_SETTABLE_STATUSES:
        raise InvalidInput(
            "A webhook can be set active or paused; the platform disables failing ones.",
            details={"status": [f"Choose one of {list(_WEBHOOK_SETTABLE_STATUSES)}."]},
        )
    return status


@transaction.atomic
def webhook_create(
    *,
    organization: Organization,
    user: User,
    name: str,
    url: str,
    events: list[str],
    status: str = Webhook.Status.ACTIVE,
) -> CreatedWebhook:
    """Register an endpoint with a new signing secret, returned once and stored encrypted."""
    secret = webhook_secret_generate()
    webhook = Webhook.objects.create(
        organization=organization,
        user=user,
        name=name,
        url=_validate_webhook_url(url),
        events=_validate_webhook_events(events),
        status=_validate_webhook_status(status),
        secret_encrypted=crypto.encrypt(secret),
        secret_hash=crypto.hash_secret(secret),
    )
    return CreatedWebhook(webhook=webhook, secret=secret)


@transaction.atomic
def webhook_update(
    *,
    webhook: Webhook,
    name: str | None = None,
    url: str | None = None,
    events: list[str] | None = None,
    status: str | None = None,
) -> Webhook:
    fields = []
    if name is not None:
        webhook.name = name
        fields.append("name")
    if url is not None:
        webhook.url = _validate_webhook_url(url)
        fields.append("url")
    if events is not None:
        webhook.events = _validate_webhook_events(events)
        fields.append("events")
    if status is not None and status != webhook.status:
        webhook.status = _validate_webhook_status(status)
        fields.append("status")
        if status == Webhook.Status.ACTIVE:  # re-enabled by hand: start counting failures afresh
            webhook.disabled_reason = ""
            webhook.failing_since = None
            fields += ["disabled_reason", "failing_since"]
    if fields:
        webhook.save(update_fields=[*fields, "updated_at"])
    return webhook


@transaction.atomic
def webhook_delete(*, webhook: Webhook) -> None:
    """Remove an endpoint together with its delivery log."""
    webhook.delete()


@transaction.atomic
def webhook_secret_rotate(*, webhook: Webhook, grace_hours: int = 24) -> CreatedWebhook:
    """A new signing secret (returned once). For ``grace_hours`` deliveries are signed with both
    the new and the old secret, so receivers can switch over without rejecting anything."""
    if not 0 <= grace_hours <= WEBHOOK_MAX_GRACE_HOURS:
        raise InvalidInput(
            f"grace_hours must be between 0 and {WEBHOOK_MAX_GRACE_HOURS}.",
            details={"grace_hours": [f"Use 0 to {WEBHOOK_MAX_GRACE_HOURS}."]},
        )
    webhook = Webhook.objects.select_for_update().get(pk=webhook.pk)
    secret = webhook_secret_generate()
    if grace_hours:
        webhook.previous_secret_encrypted = webhook.secret_encrypted
        webhook.previous_secret_expires_at = timezone.now() + timedelta(hours=grace_hours)
    else:
        webhook.previous_secret_encrypted = ""
        webhook.previous_secret_expires_at = None
    webhook.secret_encrypted = crypto.encrypt(secret)
    webhook.secret_hash = crypto.hash_secret(secret)
    webhook.save(
        update_fields=[
            "secret_encrypted",
            "secret_hash",
            "previous_secret_encrypted",
            "previous_secret_expires_at",
            "updated_at",
        ]
    )
    return CreatedWebhook(webhook=webhook, secret=secret)


def webhooks_disable(*, webhooks, reason: str) -> int:
    """Stop sending to ``webhooks`` (a queryset) until they are enabled again; returns how many
    were not disabled already."""
    return webhooks.exclude(status=Webhook.Status.DISABLED).update(
        status=Webhook.Status.DISABLED, disabled_reason=reason, updated_at=timezone.now()
    )
