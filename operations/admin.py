"""Admin of task batches and processed AI tasks (records of what ran: view only)."""

from django.contrib import admin, messages
from django.utils.html import format_html

from celaest.admin import CelaestModelAdmin, GeneratedRecordAdminMixin, LargeTableAdmin
from celaest.errors import Conflict

from .models import ProcessedTask, TaskBatch
from .services import batch_cancel


@admin.register(TaskBatch)
class TaskBatchAdmin(CelaestModelAdmin):
    list_display = [
        "__str__",
        "organization",
        "user",
        "status",
        "progress",
        "failed_tasks",
        "created_at",
        "finished_at",
    ]
    list_filter = ["status", "created_at"]
    list_select_related = ["organization", "user"]
    search_fields = ["name", "organization__name", "organization__slug", "user__email"]
    autocomplete_fields = ["organization", "user", "license", "prompt", "model"]
    date_hierarchy = "created_at"
    readonly_fields = [
        "total_tasks",
        "completed_tasks",
        "failed_tasks",
        "started_at",
        "finished_at",
        "cancelled_at",
        "created_at",
        "updated_at",
    ]
    fieldsets = [
        (None, {"fields": ["name", "organization", "user", "license", "prompt", "model", "status"]}),
        (
            "Progress",
            {
                "fields": [
                    "total_tasks",
                    "completed_tasks",
                    "failed_tasks",
                    "started_at",
                    "finished_at",
                    "cancelled_at",
                    "error_message",
                ]
            },
        ),
        ("Record", {"fields": ["created_at", "updated_at"], "classes": ["collapse"]}),
    ]

    actions = ["cancel_batches"]

    @admin.display(description="progress")
    def progress(self, obj):
        return f"{obj.completed_tasks}/{obj.total_tasks}"

    @admin.action(description="Cancel the selected batches (queued tasks are not run)", permissions=["change"])
    def cancel_batches(self, request, queryset):
        cancelled = 0
        for batch in queryset:
            try:
                batch_cancel(batch=batch, user=request.user)
                cancelled += 1
            except Conflict:
                pass  # already finished or cancelled
        self.message_user(request, f"{cancelled} batch(es) cancelled.", messages.SUCCESS)


@admin.register(ProcessedTask)
class ProcessedTaskAdmin(GeneratedRecordAdminMixin, LargeTableAdmin):
    list_display = [
        "short_id",
        "organization",
        "user",
        "model",
        "status",
        "tokens_total",
        "cost_usd",
        "execution_time_ms",
        "created_at",
    ]
    list_filter = ["status", "model__provider"]
    list_select_related = ["organization", "user", "model"]
    date_hierarchy = "created_at"
    changelist_defer = ("input_text", "input_variables", "output_text", "output_json", "error_message")
    search_fields = ["organization__slug__exact", "user__email__exact", "error_code__exact"]
    search_help_text = "Task id, exact organization slug, user email or error code."
    fieldsets = [
        (None, {"fields": ["id", "organization", "user", "license", "batch", "batch_index", "status", "attempts"]}),
        ("Routing", {"fields": ["model", "api_key", "prompt"]}),
        ("Input", {"fields": ["input_text", "input_variables"]}),
        ("Output", {"fields": ["output_text", "output_json", "error_code", "error_message"]}),
        (
            "Metering",
            {
                "fields": [
                    "tokens_input",
                    "tokens_output",
                    "tokens_cached",
                    "tokens_total",
                    "cost_usd",
                    "execution_time_ms",
                    "created_at",
                    "queued_at",
                    "started_at",
                    "completed_at",
                ]
            },
        ),
    ]

    @admin.display(description="task", ordering="id")
    def short_id(self, obj):
        return format_html('<span title="{}">{}…</span>', obj.id, str(obj.id)[:8])
