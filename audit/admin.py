"""Admin of the audit trail and system events: append-only, so staff can only look."""

from django.contrib import admin

from celaest.admin import AppendOnlyAdminMixin, LargeTableAdmin, pretty_json, truncated

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
