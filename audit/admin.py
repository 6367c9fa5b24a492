"""Admin of the audit trail and system events: append-only, so staff can only look."""

from django.contrib import admin

from celaest.admin import (
    AppendOnlyAdminMixin,
    LargeTableAdmin,
    Panel,
    changelist_url,
    contribute_panel,
    pretty_json,
    truncated,
)
from celaest.admin_display import admin_link, humanised_time
from identity.models import Organization

from .models import AuditLog, SystemEvent


@admin.register(AuditLog)
class AuditLogAdmin(AppendOnlyAdminMixin, LargeTableAdmin):
    list_display = [
        "created_at",
        "action",
        "resource_type",
        "resource_id",
        "resource_repr",
        "user",
        "organization",
        "ip_address",
        "source",
    ]
    list_filter = ["action"]
    list_select_related = ["user", "organization"]
    date_hierarchy = "created_at"
    changelist_defer = ("changes", "user_agent")
    search_fields = ["resource_id__exact", "resource_type__exact", "user__email__exact", "organization__slug__exact"]
    search_help_text = "Exact resource id or type, user email, organization slug or IP address."
    ip_search_fields = ("ip_address",)
    fields = [
        "created_at",
        "action",
        "source",
        "user",
        "organization",
        "resource_type",
        "resource_id",
        "resource_repr",
        "changes_pretty",
        "ip_address",
        "user_agent",
    ]
    readonly_fields = ["changes_pretty"]

    @admin.display(description="changes")
    def changes_pretty(self, obj):
        return pretty_json(obj.changes)


@admin.register(SystemEvent)
class SystemEventAdmin(AppendOnlyAdminMixin, LargeTableAdmin):
    list_display = ["created_at", "severity", "event_type", "source", "summary", "organization"]
    list_filter = ["severity"]
    list_select_related = ["organization"]
    date_hierarchy = "created_at"
    changelist_defer = ("data",)
    search_fields = ["event_type__exact", "source__exact", "organization__slug__exact"]
    search_help_text = "Exact event type, source or organization slug."
    fields = ["created_at", "severity", "event_type", "source", "organization", "message", "data_pretty"]
    readonly_fields = ["data_pretty"]

    @admin.display(description="message")
    def summary(self, obj):
        return truncated(obj.message, 80)

    @admin.display(description="data")
    def data_pretty(self, obj):
        return pretty_json(obj.data)


#: how many audit entries the organization page lists
ORGANIZATION_AUDIT_ROWS = 15


def organization_audit_panel(request, organization) -> Panel:
    entries = (
        AuditLog.objects.filter(organization=organization)
        .select_related("user")
        .order_by("-created_at")[:ORGANIZATION_AUDIT_ROWS]
    )
    return Panel(
        title="Last audit entries",
        columns=["When", "Who", "Action", "What", "Source"],
        rows=[
            [
                humanised_time(entry.created_at),
                entry.user.email if entry.user else "system",
                admin_link(entry, entry.get_action_display()),
                f"{entry.resource_type} {truncated(entry.resource_repr, 40)}".strip(),
                entry.source or "—",
            ]
            for entry in entries
        ],
        more_url=changelist_url(AuditLog, organization__id__exact=organization.pk),
        empty="No audit entry.",
        wide=True,
    )


contribute_panel(Organization, organization_audit_panel, order=90)
