"""Admin of ROI metrics (rolled up by Celery) and telemetry events: both are records, view only."""

from django.contrib import admin

from celaest.admin import CelaestModelAdmin, GeneratedRecordAdminMixin, LargeTableAdmin, truncated

from .models import RoiMetric, TelemetryEvent


@admin.register(RoiMetric)
class RoiMetricAdmin(GeneratedRecordAdminMixin, CelaestModelAdmin):
    list_display = [
        "organization",
        "period_type",
        "period_start",
        "tasks_completed",
        "tasks_failed",
        "time_saved_minutes",
        "money_saved",
        "currency",
        "ai_cost_usd",
        "active_users_count",
    ]
    list_filter = ["period_type"]
    list_select_related = ["organization"]
    search_fields = ["organization__name", "organization__slug"]
    date_hierarchy = "period_start"


@admin.register(TelemetryEvent)
class TelemetryEventAdmin(GeneratedRecordAdminMixin, LargeTableAdmin):
    list_display = ["created_at", "event_type", "event_name", "organization", "user", "device_type", "page"]
    list_filter = ["device_type"]
    list_select_related = ["organization", "user"]
    date_hierarchy = "created_at"
    changelist_defer = ("properties",)
    search_fields = [
        "event_type__exact",
        "event_name__exact",
        "session_id__exact",
        "organization__slug__exact",
        "user__email__exact",
    ]
    search_help_text = "Exact event type or name, session id, organization slug or user email."

    @admin.display(description="page")
    def page(self, obj):
        return truncated(obj.page_url, 50)
