"""Admin of task batches and processed AI tasks (records of what ran: view only)."""

from django.contrib import admin, messages
from django.db.models import Count, F, Sum
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from celaest.admin import (
    CelaestModelAdmin,
    GeneratedRecordAdminMixin,
    LargeTableAdmin,
    Panel,
    changelist_url,
    contribute_panel,
)
from celaest.admin_display import format_money, usage_meter
from celaest.errors import Conflict
from identity.models import Organization
from licensing.models import License, LicenseUsageLog
from licensing.selectors import license_effective_limits

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
        "id",
        "organization",
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


# --- the organization page: AI use this period against its limits -----------------------------------

#: (limit key, label) of the limits AI use counts against, summed over the live licenses
AI_LIMITS = [("ai_requests_per_month", "Requests"), ("tokens_per_month", "Tokens")]


def _summed_limit(licenses, key):
    """The sum of ``key`` over ``licenses``; None (unlimited) if one of them sets no limit."""
    values = [license_effective_limits(license=license).get(key) for license in licenses]
    if not values or any(not isinstance(value, int) for value in values):
        return None
    return sum(values)


def organization_ai_panel(request, organization) -> Panel:
    today = timezone.now().date()
    month_start = today.replace(day=1)
    live = list(
        License.objects.filter(
            organization=organization, status__in=[License.Status.ACTIVE, License.Status.TRIAL]
        ).select_related("plan")
    )
    usage = LicenseUsageLog.objects.filter(
        organization=organization, period_start__lte=today, period_end__gte=today
    ).aggregate(
        requests=Coalesce(Sum("ai_requests_count"), 0),
        tokens=Coalesce(Sum(F("tokens_input") + F("tokens_output")), 0),
        cost=Sum("calculated_cost"),
    )
    days = (
        ProcessedTask.objects.filter(organization=organization, created_at__date__gte=month_start)
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(requests=Count("id"), cost=Sum("cost_usd"))
        .order_by("day")
    )
    days = list(days)
    used = {"ai_requests_per_month": usage["requests"], "tokens_per_month": usage["tokens"]}
    limits = {key: _summed_limit(live, key) for key, _label in AI_LIMITS}
    chart = {
        "title": "",
        "data": [
            {
                "x": [str(row["day"]) for row in days],
                "y": [row["requests"] for row in days],
                "type": "bar",
                "name": "AI requests per day",
            },
            {
                "x": [str(row["day"]) for row in days],
                "y": [float(row["cost"] or 0) for row in days],
                "type": "scatter",
                "name": "AI spend per day (USD)",
                "yaxis": "y2",
            },
        ],
        "layout": {
            "yaxis": {"title": {"text": "requests"}},
            "yaxis2": {"title": {"text": "USD"}, "overlaying": "y", "side": "right", "showgrid": False},
        },
    }
    return Panel(
        title=f"AI use since {month_start:%B %-d}",
        facts=[
            *[(label, usage_meter(used[key], limits[key])) for key, label in AI_LIMITS],
            ("Spend", format_money(usage["cost"] or 0, "USD")),
            ("Live licenses", len(live)),
        ],
        chart=chart if days else None,  # no task this month: nothing to draw
        more_url=changelist_url(ProcessedTask, organization__id__exact=organization.pk),
        more_label="All tasks",
        wide=True,
    )


contribute_panel(Organization, organization_ai_panel, order=30)

from . import admin_budgets  # noqa: E402, F401 - registers the paying-license admins
