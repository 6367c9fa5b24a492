"""The audit row of an API write, computed from what the base viewset saw (see
``celaest.api.viewsets.AuditedWritesMixin``; connected to ``celaest.hooks.api_write_observers``
in ``AuditConfig.ready()``)."""

import logging

from celaest.middleware import current_request_context

from .models import AuditLog
from .services import audit_model_write, audit_record, model_snapshot

logger = logging.getLogger(__name__)

_STANDARD_ACTIONS = {
    "create": AuditLog.Action.CREATE,
    "update": AuditLog.Action.UPDATE,
    "partial_update": AuditLog.Action.UPDATE,
    "destroy": AuditLog.Action.DELETE,
}


def _created_object(view, response):
    model = view.scoped_queryset().model
    data = response.data if isinstance(response.data, dict) else {}
    pk = data.get("id", data.get(model._meta.pk.name))
    if pk is None:
        return None
    return model._base_manager.filter(pk=pk).first()


class ApiWriteAuditor:
    def object_loaded(self, *, view, obj) -> None:
        view._audit_before = (obj, str(obj.pk), model_snapshot(obj))

    def write_succeeded(self, *, view, response) -> None:
        audit_api_write(view=view, response=response)


api_write_auditor = ApiWriteAuditor()


def audit_api_write(*, view, response) -> AuditLog | None:
    context = current_request_context()
    if context is not None and context.change_audited:
        return None  # a service recorded this change already
    try:
        return _record(view, response)
    except Exception:  # the change is made; a failed audit write must be seen, not become a 500
        logger.exception("Could not audit %s %s", view.request.method, view.request.path)
        return None


def _record(view, response) -> AuditLog | None:
    action = _STANDARD_ACTIONS.get(view.action, AuditLog.Action.ACTION)
    extra = {} if view.action in _STANDARD_ACTIONS else {"api_action": view.action}
    audit_before = getattr(view, "_audit_before", None)
    if audit_before is not None:
        target, pk, before = audit_before
        current = type(target)._base_manager.filter(pk=pk).first()
        if current is None:
            removed = AuditLog.Action.DELETE
            return audit_model_write(
                action=removed, instance=target, before=before, removed=True, source="api", resource_id=pk
            )
        return audit_model_write(action=action, instance=current, before=before, source="api", extra=extra)
    created = _created_object(view, response) if view.action == "create" else None
    if created is not None:
        return audit_model_write(action=AuditLog.Action.CREATE, instance=created, before={}, source="api")
    model = view.scoped_queryset().model
    return audit_record(action=action, resource_type=model._meta.label_lower, changes=extra, source="api")
