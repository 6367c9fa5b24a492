"""Writes to the audit trail and the platform's system events. Every module records through
these two functions; rows are append-only."""

from django.db import models

from celaest.redaction import redact
from identity.models import Organization, User

from .models import AuditLog, SystemEvent


def audit_record(
    *,
    action: str,
    resource: models.Model | None = None,
    resource_type: str = "",
    resource_id: str = "",
    changes: dict | None = None,
    user: User | None = None,
    organization: Organization | None = None,
    ip_address: str | None = None,
    user_agent: str = "",
    source: str = "system",
) -> AuditLog:
    """Append one audit row. ``resource`` fills type, id and repr; ``changes`` is redacted
    (secrets never reach the trail) — pass ``{"field": [before, after]}``."""
    if resource is not None:
        resource_type = resource_type or resource._meta.label_lower
        resource_id = resource_id or str(resource.pk)
        if organization is None:
            organization = _organization_of(resource)
    if user is not None and not getattr(user, "is_authenticated", False):
        user = None
    return AuditLog.objects.create(
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        resource_repr=str(resource)[:200] if resource is not None else "",
        changes=redact(changes or {}),
        user=user,
        organization=organization or (user.organization if user is not None else None),
        ip_address=ip_address or None,
        user_agent=(user_agent or "")[:500],
        source=source,
    )


def _organization_of(resource: models.Model) -> Organization | None:
    if isinstance(resource, Organization):
        return resource
    organization_id = getattr(resource, "organization_id", None)
    if organization_id is not None:
        return Organization.all_objects.filter(pk=organization_id).first()
    return None


def system_event_record(
    *,
    event_type: str,
    severity: str = SystemEvent.Severity.INFO,
    message: str = "",
    source: str = "",
    organization: Organization | None = None,
    data: dict | None = None,
) -> SystemEvent:
    """Record a platform event (job runs, key health, collisions, disabled endpoints)."""
    return SystemEvent.objects.create(
        event_type=event_type,
        severity=severity,
        message=message,
        source=source,
        organization=organization,
        data=redact(data or {}),
    )
