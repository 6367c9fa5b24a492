"""The audit rows of admin writes: every add, change, delete and action made through a
``celaest.admin.CelaestModelAdmin`` (connected to ``celaest.hooks.admin_write_observers`` in
``AuditConfig.ready()``)."""

from django.utils import timezone

from .models import AuditLog
from .services import audit_model_write, audit_record, model_snapshot


def _snapshots(request) -> dict:
    """Field values of the objects this admin request loaded for writing, before the write."""
    if not hasattr(request, "_celaest_audit_snapshots"):
        request._celaest_audit_snapshots = {}
    return request._celaest_audit_snapshots


class AdminWriteAuditor:
    def object_loaded(self, *, request, obj) -> None:
        _snapshots(request)[(obj._meta.label_lower, str(obj.pk))] = model_snapshot(obj)

    def added(self, *, request, obj) -> None:
        audit_model_write(action=AuditLog.Action.CREATE, instance=obj, before={}, source="admin")

    def changed(self, *, request, obj) -> None:
        # A change from the list page (list_editable) was not loaded through get_object.
        before = _snapshots(request).get((obj._meta.label_lower, str(obj.pk)), model_snapshot(obj))
        audit_model_write(action=AuditLog.Action.UPDATE, instance=obj, before=before, source="admin")

    def deleted(self, *, objects, removed: bool) -> None:
        for obj in objects:
            before = model_snapshot(obj)
            extra = None if removed else {"deleted_at": [None, timezone.now().isoformat()]}
            audit_model_write(
                action=AuditLog.Action.DELETE, instance=obj, before=before, removed=removed, source="admin", extra=extra
            )

    def action_run(self, *, request, model_label: str, action_name: str, selected: list[str]) -> None:
        audit_record(
            action=AuditLog.Action.ACTION,
            resource_type=model_label,
            changes={"admin_action": action_name, "selected": selected[:100], "selected_count": len(selected)},
            source="admin",
        )


admin_write_auditor = AdminWriteAuditor()
