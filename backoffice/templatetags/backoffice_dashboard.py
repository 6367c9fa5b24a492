"""``{% staff_dashboard %}``: the dashboard panel on the admin index (staff only)."""

from datetime import datetime

from django import template
from django.conf import settings

from backoffice.dashboard import CHART_DAYS, PERIODS, dashboard_data
from backoffice.schedules import schedule_in_words
from celaest.admin_display import format_money, humanised_time, status_badge
from celaest.jobs import periodic_job_status

register = template.Library()


def _period(request) -> int:
    try:
        days = int(request.GET.get("period", CHART_DAYS))
    except ValueError:
        return CHART_DAYS
    return days if days in PERIODS else CHART_DAYS


def _jobs() -> list[dict]:
    schedule = settings.CELERY_BEAT_SCHEDULE
    jobs = []
    for job in periodic_job_status():
        last_run = job["last_run_at"]
        if isinstance(last_run, str):
            try:
                last_run = datetime.fromisoformat(last_run)
            except ValueError:
                pass
        outcome = job["outcome"]
        jobs.append(
            {
                **job,
                "schedule": schedule_in_words(schedule[job["key"]]["schedule"]) if job["key"] in schedule else "—",
                "last_run": humanised_time(last_run) if isinstance(last_run, datetime) else (last_run or "—"),
                "outcome_badge": status_badge(
                    {"ok": "succeeded", "success": "succeeded", "never run": "pending"}.get(outcome, outcome), outcome
                ),
            }
        )
    return jobs


@register.inclusion_tag("admin/backoffice/dashboard.html", takes_context=True)
def staff_dashboard(context):
    request = context.get("request")
    if request is None or not request.user.is_staff:
        return {"visible": False}
    days = _period(request)
    data = dashboard_data(days=days)

    def amounts(by_currency: dict) -> str:
        return ", ".join(format_money(amount, currency) for currency, amount in by_currency.items()) or format_money(0)

    return {
        "visible": True,
        "kpis": data["kpis"],
        "revenue_this_month": amounts(data["kpis"]["revenue_this_month"]),
        "mrr": amounts(data["kpis"]["mrr"]),
        "charts": data["charts"],
        "jobs": _jobs(),
        "days": days,
        "periods": PERIODS,
    }
