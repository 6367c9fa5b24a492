"""Demo sessions, API keys, webhooks and deliveries, system config and feature flags."""

import secrets
from datetime import timedelta

from django.templatetags.static import static

from celaest.crypto import encrypt, hash_secret
from demo.loaders.base import (
    ADMIN_EMAIL,
    BENCH_WEBHOOK_NAME,
    DEMO_ORG_SLUG,
    DEMO_RELEASE_FILE,
    SECOND_ORG_SLUG,
    USER_AGENTS,
    DemoRun,
    demo_uuid,
)
from marketplace.models import (
    ProductRelease,
)
from settings_app.models import FeatureFlag, SystemConfig, UserApiKey, UserSession, Webhook, WebhookDelivery
from settings_app.services.api_keys import api_key_material
from settings_app.services.webhooks import webhook_secret_generate

#: What earlier versions of this seed stored, and what replaces it (``retire_outside_urls``).
_OLD_DOWNLOAD_PREFIX = "https://downloads.example.com/"
_OLD_WEBHOOK_URLS = {
    "https://erp.demo.example.com/hooks/celaest": "https://erp.demo.example/hooks/celaest",
    "https://hooks.example.com/services/demo-alerts": "https://alerts.demo.example/services/demo-alerts",
    "https://portal.acme.example.com/celaest/events": "https://portal.acme.example/celaest/events",
}
_PAUSED_ERROR = "Not sent: the endpoint is paused."
_NOT_SENT_DELIVERY = ("demo-erp", "e3", 2)  # webhook, event, attempt: the retry after the pause


DEVICES = (
    {"browser": "Firefox 128", "os": "Windows 11", "device": "desktop"},
    {"browser": "Safari 17", "os": "macOS 14", "device": "desktop"},
    {"browser": "Safari", "os": "iOS 17", "device": "mobile"},
    {"client": "CELAEST Desktop 1.1.0", "os": "Windows 11", "device": "desktop"},
)


def webhook_secret_fields() -> dict[str, str]:
    secret = webhook_secret_generate()
    return {"secret_encrypted": encrypt(secret), "secret_hash": hash_secret(secret)}


def user_api_key_fields() -> dict[str, str]:
    """A personal API key; only its hash and a display prefix are stored (nobody sees the demo keys)."""
    return api_key_material()[1]


def session_token_hash() -> str:
    return hash_secret(secrets.token_urlsafe(32))


_SYSTEM_CONFIG = (
    ("billing.default_currency", "USD", "Currency of new orders and invoices.", False),
    ("billing.order_number_format", "ORD-{year}-{seq:06d}", "Order numbers, sequential per year.", False),
    ("billing.invoice_number_format", "INV-{year}-{seq:06d}", "Invoice numbers, sequential per year.", False),
    ("aimesh.request_timeout_seconds", 60, "Timeout of one provider request.", False),
    ("aimesh.key_cooldown_seconds", 600, "How long a failing provider key rests before it is tried again.", False),
    ("ipcontrol.collision_window_minutes", 15, "Window in which simultaneous use counts as a collision.", False),
    ("webhooks.max_attempts", 8, "Delivery attempts before an event is given up.", False),
    ("roi.default_hourly_rate", "40.00", "Hourly rate for ROI when an organization sets none.", False),
)


def _delivery_error(status: str, http_status: int | None, *, not_sent: bool) -> str:
    if status != WebhookDelivery.Status.FAILED:
        return ""
    return _PAUSED_ERROR if not_sent else f"HTTP {http_status or 'timeout'}"


def retire_outside_urls() -> None:
    """Rows an earlier version of this seed pointed at outside hosts (a database that ``bin/dev``
    keeps under ``var/``): their releases now point at the local demo file, their webhooks are
    paused at example URLs. Rows changed since by hand are left alone."""
    ProductRelease.objects.filter(download_url__startswith=_OLD_DOWNLOAD_PREFIX).update(
        download_url=static(DEMO_RELEASE_FILE)
    )
    for old_url, new_url in _OLD_WEBHOOK_URLS.items():
        Webhook.objects.filter(url=old_url).exclude(status=Webhook.Status.DISABLED).update(
            url=new_url, status=Webhook.Status.PAUSED
        )
        Webhook.objects.filter(url=old_url).update(url=new_url)
    Webhook.objects.filter(
        name=BENCH_WEBHOOK_NAME, url__startswith="https://erp.", url__endswith=".example.com/hooks/celaest"
    ).update(status=Webhook.Status.PAUSED)
    WebhookDelivery.objects.filter(
        pk=demo_uuid("delivery", *_NOT_SENT_DELIVERY), status=WebhookDelivery.Status.PENDING
    ).update(status=WebhookDelivery.Status.FAILED, error=_PAUSED_ERROR, next_attempt_at=None, duration_ms=0)


def seed_settings(demo: DemoRun) -> None:
    for email, user in demo.users.items():
        if user.organization_id is None and email != ADMIN_EMAIL:
            continue
        for n, (active, days_ago) in enumerate(((True, 0), (False, 20))):
            last_activity = demo.now - timedelta(days=days_ago, minutes=15 + n)
            device = n + (len(email) % 3)
            UserSession.objects.get_or_create(
                pk=demo_uuid("session", email, n),
                defaults={
                    "user": user,
                    "session_token": session_token_hash(),
                    "ip_address": f"203.0.113.{40 + len(email) % 50}",
                    "user_agent": USER_AGENTS[device % len(USER_AGENTS)],
                    "device_info": DEVICES[device % len(DEVICES)],
                    "is_active": active,
                    "last_activity_at": last_activity,
                    "expires_at": last_activity + timedelta(days=14),
                    "revoked_at": None if active else last_activity + timedelta(hours=1),
                    "created_at": last_activity - timedelta(hours=3),
                },
            )

    api_keys = (
        ("demo-ci", DEMO_ORG_SLUG, "owner", "CI pipeline", ["licenses:validate", "tasks:run"], 1_200, False),
        ("demo-reporting", DEMO_ORG_SLUG, "admin", "Reporting (read-only)", ["roi:read", "tasks:read"], 600, False),
        ("demo-old", DEMO_ORG_SLUG, "admin", "Old ERP integration", ["tasks:run"], 600, True),
        ("acme-erp", SECOND_ORG_SLUG, "owner", "ERP connector", ["tasks:run", "licenses:read"], 300, False),
    )
    for key, org_slug, role, name, scopes, rpm, revoked in api_keys:
        UserApiKey.objects.get_or_create(
            pk=demo_uuid("api-key", key),
            defaults={
                "user": demo.person(org_slug, role),
                "name": name,
                **user_api_key_fields(),
                "scopes": scopes,
                "rate_limit_rpm": rpm,
                "usage_count": 0 if revoked else 1_000 + len(name) * 37,
                "last_used_at": demo.now - timedelta(hours=len(name)),
                "last_used_ip": "198.51.100.20",
                "expires_at": demo.now + timedelta(days=180),
                "revoked_at": demo.now - timedelta(days=30) if revoked else None,
                "created_at": demo.now - timedelta(days=90),
            },
        )

    # Example endpoints, never active: an active one would be sent every event the demo makes
    # (DNS lookups and failed deliveries). Point one at your receiver and resume it to see
    # deliveries (a local receiver needs WEBHOOK_ALLOWED_HOSTS).
    webhooks = (
        (
            "demo-erp",
            DEMO_ORG_SLUG,
            "ERP sync (example endpoint)",
            _OLD_WEBHOOK_URLS["https://erp.demo.example.com/hooks/celaest"],
            ["license.suspended", "license.renewed", "order.paid", "invoice.issued"],
            Webhook.Status.PAUSED,
        ),
        (
            "demo-alerts",
            DEMO_ORG_SLUG,
            "Slack alerts (example endpoint)",
            _OLD_WEBHOOK_URLS["https://hooks.example.com/services/demo-alerts"],
            ["collision.detected", "batch.completed", "batch.failed"],
            Webhook.Status.PAUSED,
        ),
        (
            "acme-portal",
            SECOND_ORG_SLUG,
            "Maintenance portal (example endpoint)",
            _OLD_WEBHOOK_URLS["https://portal.acme.example.com/celaest/events"],
            ["task.completed", "task.failed"],
            Webhook.Status.DISABLED,
        ),
    )
    for key, org_slug, name, url, events, status in webhooks:
        disabled = status == Webhook.Status.DISABLED
        demo.webhooks[key], _ = Webhook.objects.get_or_create(
            pk=demo_uuid("webhook", key),
            defaults={
                "organization": demo.orgs[org_slug],
                "user": demo.person(org_slug, "owner"),
                "name": name,
                "url": url,
                **webhook_secret_fields(),
                "events": events,
                "status": status,
                "disabled_reason": "Disabled after 5 days of failed deliveries" if disabled else "",
                "failing_since": demo.now - timedelta(days=6) if disabled else None,
                "last_success_at": None if disabled else demo.now - timedelta(hours=3),
                "created_at": demo.now - timedelta(days=50),
            },
        )

    deliveries = (
        # webhook, event, type, attempt, status, http status, minutes ago
        ("demo-erp", "e1", "order.paid", 1, WebhookDelivery.Status.SUCCEEDED, 200, 60 * 24 * 28),
        ("demo-erp", "e2", "invoice.issued", 1, WebhookDelivery.Status.FAILED, 503, 60 * 24 * 28),
        ("demo-erp", "e2", "invoice.issued", 2, WebhookDelivery.Status.SUCCEEDED, 200, 60 * 24 * 28 - 1),
        ("demo-erp", "e3", "license.suspended", 1, WebhookDelivery.Status.FAILED, None, 10),
        # The retry came after the endpoint was paused: recorded, not sent (as the platform does).
        ("demo-erp", "e3", "license.suspended", 2, WebhookDelivery.Status.FAILED, None, 9),
        ("acme-portal", "e4", "task.failed", 1, WebhookDelivery.Status.FAILED, 500, 60 * 24 * 6),
        ("acme-portal", "e4", "task.failed", 2, WebhookDelivery.Status.FAILED, 502, 60 * 24 * 5),
        ("acme-portal", "e4", "task.failed", 3, WebhookDelivery.Status.FAILED, 404, 60 * 24 * 4),
    )
    for webhook_key, event, event_type, attempt, status, http_status, minutes_ago in deliveries:
        webhook = demo.webhooks[webhook_key]
        event_id = "msg_" + demo_uuid("event", webhook_key, event).hex
        not_sent = (webhook_key, event, attempt) == _NOT_SENT_DELIVERY
        created = demo.now - timedelta(minutes=minutes_ago)
        WebhookDelivery.objects.get_or_create(
            pk=demo_uuid("delivery", webhook_key, event, attempt),
            defaults={
                "webhook": webhook,
                "organization_id": webhook.organization_id,
                "event_id": event_id,
                "event_type": event_type,
                "payload": {
                    "type": event_type,
                    "timestamp": created.isoformat(),
                    "data": {"organization_id": str(webhook.organization_id), "object_id": str(demo_uuid(event))},
                },
                "status": status,
                "attempt_number": attempt,
                "response_status": http_status,
                "response_body": '{"ok": true}' if http_status == 200 else "",
                "error": _delivery_error(status, http_status, not_sent=not_sent),
                "duration_ms": 0 if not_sent else 180 + attempt * 40,
                "next_attempt_at": None,  # all settled: nothing for the sweeper to send
                "delivered_at": created if status == WebhookDelivery.Status.SUCCEEDED else None,
                "created_at": created,
            },
        )

    for key, value, description, sensitive in _SYSTEM_CONFIG:
        SystemConfig.objects.get_or_create(
            key=key,
            defaults={"value": value, "description": description, "is_sensitive": sensitive, "updated_by": demo.staff},
        )
    SystemConfig.objects.get_or_create(
        key="integrations.slack_webhook_url",
        defaults={
            "value": "https://hooks.slack.example.com/services/" + secrets.token_urlsafe(24),
            "description": "Where platform alerts are posted. Secret: anyone with the URL can post.",
            "is_sensitive": True,
            "updated_by": demo.staff,
        },
    )

    flags = (
        ("new-dashboard", "The redesigned ROI dashboard.", True, FeatureFlag.TargetType.PERCENTAGE, 25, []),
        ("ai-batch-export", "Export batch results as CSV/XLSX.", True, FeatureFlag.TargetType.ALL, 100, []),
        (
            "anthropic-routing",
            "Route summaries to Anthropic models.",
            True,
            FeatureFlag.TargetType.ORGANIZATIONS,
            0,
            [str(demo.orgs[DEMO_ORG_SLUG].pk)],
        ),
        ("legacy-reports", "The old PDF reports (to be removed).", False, FeatureFlag.TargetType.ALL, 0, []),
    )
    for key, description, enabled, target, percentage, ids in flags:
        FeatureFlag.objects.get_or_create(
            flag_key=key,
            defaults={
                "description": description,
                "is_enabled": enabled,
                "target_type": target,
                "target_percentage": percentage,
                "target_ids": ids,
            },
        )
