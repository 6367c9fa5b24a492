"""Demo audit log and system events."""

from datetime import timedelta

from django.db import models

from audit.models import AuditLog, SystemEvent
from demo.loaders.base import (
    ADMIN_EMAIL,
    DEMO_ORG_SLUG,
    OWNER_EMAIL,
    SECOND_ORG_SLUG,
    USER_AGENTS,
    DemoRun,
    demo_uuid,
    person_email,
)
from licensing.models import License
from operations.models import TaskBatch
from settings_app.models import SystemConfig, UserApiKey


def _audit_resource(resource: models.Model | tuple[str, str]) -> tuple[str, str]:
    """The id and the display text of an audited object (never a secret such as a license key)."""
    if isinstance(resource, tuple):
        return resource
    if isinstance(resource, License):
        return str(resource.pk), f"{resource.plan.name} license ({resource.status})"
    return str(resource.pk), str(resource)[:200]


def seed_audit(demo: DemoRun) -> None:
    viewer = person_email(DEMO_ORG_SLUG, "viewer")
    demo_admin = person_email(DEMO_ORG_SLUG, "admin")
    acme_owner = person_email(SECOND_ORG_SLUG, "owner")
    primary = demo.licenses[(DEMO_ORG_SLUG, "primary")]
    suspended = demo.licenses[(DEMO_ORG_SLUG, "suspended")]
    order = demo.orders["demo-1"]
    ci_key = UserApiKey.objects.get(pk=demo_uuid("api-key", "demo-ci"))
    cancelled_batch = TaskBatch.objects.get(pk=demo_uuid("batch", "demo-export"))
    slack_url = SystemConfig.objects.get(key="integrations.slack_webhook_url")
    # key, who, organization, action, resource type, resource (None: the user), changes, source, ip, days ago
    logs = (
        ("staff-login", ADMIN_EMAIL, None, "login", "identity.user", None, {}, "admin", "192.0.2.10", 1),
        ("license-created", ADMIN_EMAIL, DEMO_ORG_SLUG, "create", "licensing.license", primary,
         {"status": [None, "active"], "plan": [None, "pro"]}, "admin", "192.0.2.10", 30),
        ("license-suspended", ADMIN_EMAIL, DEMO_ORG_SLUG, "update", "licensing.license", suspended,
         {"status": ["active", "suspended"], "status_reason": ["", suspended.status_reason]}, "admin", "192.0.2.10", 3),
        ("owner-login", OWNER_EMAIL, DEMO_ORG_SLUG, "login", "identity.user", None, {}, "api", "203.0.113.10", 0),
        ("viewer-failed", viewer, DEMO_ORG_SLUG, "login_failed", "identity.user", None, {"reason": "bad_password"},
         "api", "198.51.100.66", 2),
        ("order-created", OWNER_EMAIL, DEMO_ORG_SLUG, "create", "billing.order", order,
         {"status": [None, "pending"], "total": [None, str(order.total)]}, "api", "203.0.113.10", 28),
        ("api-key-created", OWNER_EMAIL, DEMO_ORG_SLUG, "create", "settings_app.userapikey", ci_key,
         {"name": [None, ci_key.name], "scopes": [None, ci_key.scopes]}, "api", "203.0.113.10", 90),
        ("api-key-used", OWNER_EMAIL, DEMO_ORG_SLUG, "api_key_used", "settings_app.userapikey", ci_key, {},
         "api", "198.51.100.20", 0),
        ("config-changed", ADMIN_EMAIL, None, "update", "settings_app.systemconfig", slack_url,
         {"value": ["***", "***"]}, "admin", "192.0.2.10", 5),
        ("roi-export", demo_admin, DEMO_ORG_SLUG, "export", "analytics.roimetric", ("", "ROI, last 30 days"),
         {"format": "csv"}, "api", "203.0.113.11", 1),
        ("batch-cancelled", demo_admin, DEMO_ORG_SLUG, "action", "operations.taskbatch", cancelled_batch,
         {"action": "cancel", "status": ["running", "cancelled"]}, "api", "203.0.113.11", 6),
        ("acme-login", acme_owner, SECOND_ORG_SLUG, "login", "identity.user", None, {}, "api", "192.0.2.50", 0),
        ("acme-logout", acme_owner, SECOND_ORG_SLUG, "logout", "identity.user", None, {}, "api", "192.0.2.50", 0),
    )  # fmt: skip
    for key, email, org_slug, action, resource_type, resource, changes, source, ip, days_ago in logs:
        user = demo.users[email]
        resource_id, resource_repr = _audit_resource(resource or user)
        AuditLog.objects.get_or_create(
            pk=demo_uuid("audit", key),
            defaults={
                "user": user,
                "organization": demo.orgs[org_slug] if org_slug else None,
                "action": action,
                "resource_type": resource_type,
                "resource_id": resource_id,
                "resource_repr": resource_repr,
                "changes": changes,
                "ip_address": ip,
                "user_agent": USER_AGENTS[0],
                "source": source,
                "created_at": demo.now - timedelta(days=days_ago, minutes=len(key)),
            },
        )

    events = (
        ("roi-daily", "roi.aggregated", SystemEvent.Severity.INFO, "celery.beat", None, "Daily ROI aggregated", 0),
        (
            "key-unhealthy",
            "ai_key.unhealthy",
            SystemEvent.Severity.WARNING,
            "aimesh",
            None,
            "openai-secondary marked unhealthy after 3 consecutive failures",
            0,
        ),
        (
            "collision",
            "collision.detected",
            SystemEvent.Severity.WARNING,
            "ipcontrol",
            DEMO_ORG_SLUG,
            "Cloned machine on a Demo Corp license",
            2,
        ),
        (
            "collision-resolved",
            "collision.auto_resolved",
            SystemEvent.Severity.INFO,
            "ipcontrol",
            DEMO_ORG_SLUG,
            "Over-limit use stopped; collision closed",
            18,
        ),
        (
            "webhook-disabled",
            "webhook.endpoint_disabled",
            SystemEvent.Severity.ERROR,
            "webhooks",
            SECOND_ORG_SLUG,
            "Maintenance portal disabled after 5 days of failures",
            1,
        ),
        ("license-expired", "license.expired", SystemEvent.Severity.INFO, "licensing", DEMO_ORG_SLUG, "1 license", 12),
        (
            "worker-lost",
            "celery.worker_lost",
            SystemEvent.Severity.CRITICAL,
            "celery",
            None,
            "Worker lost while running a batch; the task was requeued",
            9,
        ),
    )
    for key, event_type, severity, source, org_slug, message, days_ago in events:
        SystemEvent.objects.get_or_create(
            pk=demo_uuid("system-event", key),
            defaults={
                "event_type": event_type,
                "severity": severity,
                "source": source,
                "message": message,
                "organization": demo.orgs[org_slug] if org_slug else None,
                "data": {"demo": True, "key": key},
                "created_at": demo.now - timedelta(days=days_ago, hours=1),
            },
        )
