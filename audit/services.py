"""Writes to the audit trail and the platform's system events. Every module records through
these functions; rows are append-only (on PostgreSQL a trigger refuses UPDATE and DELETE).

Within a request, ``audit_record`` fills the user, IP address, user agent and source from the
request context (``celaest.middleware``) when the caller does not pass them. ``audit_model_write``
records a create/update/delete with the changed fields before and after, secrets redacted: the
admin and the API base viewsets call it for every write, so no endpoint or admin page can forget.
"""

import datetime
import decimal
import uuid
from collections.abc import Iterable

from django.db import models

from celaest.middleware import current_request_context
from celaest.redaction import REDACTED, is_secret_field, redact
from identity.models import Organization, User

from .models import AuditLog, SystemEvent

#: Actions that record a change to a resource (as opposed to logins, key use, exports): once a
#: service records one in a request, the API's generic audit of the same write adds no second row.
CHANGE_ACTIONS = frozenset(AuditLog.Action) - AuditLog.NON_CHANGE_ACTIONS
#: ``AuditLog.Action.values`` builds a new list on every read: a renewal batch writes thousands of rows
_ACTIONS = frozenset(AuditLog.Action.values)
#: Bookkeeping columns that change on every save and say nothing about what was changed.
_UNAUDITED_FIELDS = frozenset({"updated_at"})


def audit_record(**arguments) -> AuditLog:
    """Append one audit row (``audit_row``'s arguments)."""
    row = audit_row(**arguments)
    row.save(force_insert=True)
    return row


def audit_record_many(*, records: Iterable[dict]) -> list[AuditLog]:
    """``audit_record`` for many rows at once (a batch job): each item holds ``audit_row``'s
    arguments; the rows are written a thousand to an INSERT."""
    return AuditLog.objects.bulk_create([audit_row(**record) for record in records], batch_size=1000)


def audit_row(
    *,
    action: str,
    resource: models.Model | None = None,
    resource_type: str = "",
    resource_id: str = "",
    changes: dict | None = None,
    user: User | None = None,
    organization: Organization | str | None = None,
    ip_address: str | None = None,
    user_agent: str = "",
    source: str = "",
) -> AuditLog:
    """One audit row, not yet stored. ``resource`` fills type, id and repr; ``changes`` is redacted
    (secrets never reach the trail) — pass ``{"field": [before, after]}``. ``organization`` is an
    ``Organization`` or its id (a batch passes the id it holds). ``source`` is admin,
    api, web (from the request), command or system (the default outside a request). ``action`` is
    one of ``AuditLog.Action``: any other is a programming error, refused before anything is
    written."""
    if action not in _ACTIONS:
        raise ValueError(f"{action!r} is not an audit action: add it to AuditLog.Action.")
    context = current_request_context()
    if context is not None:
        user = user if user is not None else context.user
        ip_address = ip_address or context.ip_address
        user_agent = user_agent or context.user_agent
        source = source or context.source
        if action in CHANGE_ACTIONS:
            context.change_audited = True
            key_id = _api_key_id(context.request)
            if key_id is not None:
                changes = {**(changes or {}), "via_key": key_id}
    if resource is not None:
        resource_type = resource_type or resource._meta.label_lower
        resource_id = resource_id or str(resource.pk)
        if organization is None:
            organization = _organization_of(resource)
    if user is not None and not getattr(user, "is_authenticated", False):
        user = None
    return AuditLog(
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        resource_repr=str(resource)[:200] if resource is not None else "",
        changes=redact(changes or {}),
        user=user,
        organization_id=getattr(organization, "pk", organization)
        or (user.organization_id if user is not None else None),
        ip_address=ip_address or None,
        user_agent=(user_agent or "")[:500],
        source=source or "system",
    )


def _api_key_id(request) -> str | None:
    """The id of the user API key a request was authenticated with (DRF sets ``auth`` on the
    underlying request too), or None. A change made with a key names the key on its own row:
    the key's use is on record only where it changed something, never for a refused request."""
    auth = getattr(request, "auth", None)
    if getattr(auth, "api_key_scopes", None) is None:
        return None
    return str(auth.pk)


def _organization_of(resource: models.Model) -> Organization | None:
    if isinstance(resource, Organization):
        return resource
    organization_id = getattr(resource, "organization_id", None)
    if organization_id is not None:
        return Organization.all_objects.filter(pk=organization_id).first()
    return None


# --- field diffs -----------------------------------------------------------------------------


def _jsonable(value):
    if isinstance(value, uuid.UUID | decimal.Decimal | datetime.date | datetime.time | datetime.timedelta):
        return str(value) if not isinstance(value, datetime.datetime) else value.isoformat()
    if isinstance(value, bytes | memoryview):
        return REDACTED
    return value


def model_snapshot(instance: models.Model | None) -> dict:
    """The audited field values of ``instance`` as JSON-ready data (foreign keys as ids)."""
    if instance is None:
        return {}
    return {
        field.name: _jsonable(field.value_from_object(instance))
        for field in instance._meta.concrete_fields
        if field.name not in _UNAUDITED_FIELDS
    }


def _holds_sensitive_value(*snapshots: dict) -> bool:
    # A model that flags rows as sensitive (system config) keeps their ``value`` out of the trail.
    return any(snapshot.get("is_sensitive") for snapshot in snapshots)


def snapshot_diff(before: dict, after: dict) -> dict:
    """``{"field": [before, after]}`` for every field that differs, secrets redacted."""
    sensitive_value = _holds_sensitive_value(before, after)
    changes = {}
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        if old == new:
            continue
        if is_secret_field(name) or (name == "value" and sensitive_value):
            changes[name] = [REDACTED if old not in (None, "") else old, REDACTED if new not in (None, "") else new]
        else:
            changes[name] = [old, new]
    return changes


def audit_model_write(
    *,
    action: str,
    instance: models.Model,
    before: dict | None,
    removed: bool = False,
    source: str = "",
    extra: dict | None = None,
    resource_id: str = "",
) -> AuditLog:
    """Record a create/update/delete (or another action) of ``instance`` with its field diff.
    ``before`` is the snapshot taken before the change ({} for a create); ``removed`` says the
    row is gone (its diff ends in nothing), as opposed to kept and marked (soft delete, revoke)."""
    after = {} if removed else model_snapshot(instance)
    changes = snapshot_diff(before or {}, after)
    if extra:
        changes.update(extra)
    # ``resource_id`` for an instance Django has deleted (``delete()`` clears its pk).
    return audit_record(action=action, resource=instance, resource_id=resource_id, changes=changes, source=source)


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


def job_failure_record(*, name: str, data: dict) -> SystemEvent:
    """A periodic job failed (``celaest.jobs``): a ``job.failed`` system event keeps it on record."""
    return system_event_record(
        event_type="job.failed", severity=SystemEvent.Severity.ERROR, source=name, message=f"{name} failed", data=data
    )
