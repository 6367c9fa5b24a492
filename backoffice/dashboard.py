"""The staff dashboard on the admin index: KPIs and charts over a period staff choose, each from one
aggregated query; money is summed per currency, never across currencies."""

from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

from django.db.models import Count, Q, Sum
from django.db.models.functions import Coalesce, TruncDate, TruncMonth
from django.utils import timezone

from analytics.models import RoiMetric
from billing.models import Order
from billing.selectors import subscription_metrics
from identity.models import Organization
from ipcontrol.models import LicenseCollision, LicenseValidation, LicenseValidationDaily
from ipcontrol.services import Code
from licensing.models import License
from operations.models import ProcessedTask
from settings_app.models import WebhookDelivery

#: the periods the dashboard offers (days), and the one it opens with
PERIODS = (7, 30, 90)
CHART_DAYS = 30
#: severities, least to most serious (the collisions chart's order and colours)
SEVERITIES = ["low", "medium", "high", "critical"]


def _series(rows, x, *ys):
    return {"x": [str(row[x]) for row in rows], **{y: [float(row[y] or 0) for row in rows] for y in ys}}


def dashboard_kpis(*, now, days: int = CHART_DAYS) -> dict:
    """The headline numbers; MRR and churn (over the period chosen) are billing's own
    (``billing.selectors.subscription_metrics``), as the subscription admin shows them."""
    month_start = now.date().replace(day=1)
    subscriptions = subscription_metrics(now=now, churn_days=days)
    return {
        "organizations": Organization.objects.count(),
        "live_licenses": License.objects.filter(status__in=[License.Status.ACTIVE, License.Status.TRIAL]).count(),
        "tasks_today": ProcessedTask.objects.filter(created_at__date=now.date()).count(),
        "open_collisions": LicenseCollision.objects.filter(resolved_at__isnull=True).count(),
        "revenue_this_month": {
            row["currency"]: row["total"] or Decimal("0")
            for row in Order.objects.filter(status=Order.Status.PAID, paid_at__date__gte=month_start)
            .values("currency")
            .annotate(total=Sum("total"))
            .order_by("currency")
        },
        "mrr": subscriptions["mrr"],
        "churn_percent": subscriptions["churn_percent"],
        "churned": subscriptions["churned"],
    }


def validation_days(*, since, now) -> list[dict]:
    """Valid and refused validation attempts per day of licensed keys: past days from the daily
    counts (``license_validation_daily``, kept past the log's retention), today from the log
    itself (counted hourly into the daily rows)."""
    today = now.astimezone(UTC).date()
    usable = Q(result_code__in=Code.USABLE)
    past = (
        LicenseValidationDaily.objects.filter(day__gte=since.astimezone(UTC).date(), day__lt=today)
        .values("day")
        .annotate(
            valid=Coalesce(Sum("attempts", filter=usable), 0), invalid=Coalesce(Sum("attempts", filter=~usable), 0)
        )
        .order_by("day")
    )
    live = (
        LicenseValidation.objects.filter(created_at__gte=datetime.combine(today, time.min, UTC))
        .exclude(license_id=None)
        .aggregate(valid=Count("id", filter=usable), invalid=Count("id", filter=~usable))
    )
    days = list(past)
    if live["valid"] or live["invalid"]:
        days.append({"day": today, **live})
    return days


def dashboard_charts(*, now, days: int = CHART_DAYS) -> dict:
    since = now - timedelta(days=days)
    tasks = (
        ProcessedTask.objects.filter(created_at__gte=since)
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(tasks=Count("id"), tokens=Sum("tokens_total"), cost=Sum("cost_usd"))
        .order_by("day")
    )
    roi = (
        RoiMetric.objects.filter(period_type="month", period_start=now.date().replace(day=1))
        .values("organization__name", "money_saved", "time_saved_minutes")
        .order_by("-money_saved")[:15]
    )
    validations = validation_days(since=since, now=now)
    collisions = sorted(
        LicenseCollision.objects.filter(resolved_at__isnull=True)
        .values("severity")
        .annotate(open=Count("id"))
        .order_by("severity"),
        key=lambda row: SEVERITIES.index(row["severity"]) if row["severity"] in SEVERITIES else len(SEVERITIES),
    )
    revenue = (
        Order.objects.filter(status=Order.Status.PAID, paid_at__gte=now - timedelta(days=365))
        .annotate(month=TruncMonth("paid_at"))
        .values("month", "currency")
        .annotate(revenue=Sum("total"))
        .order_by("month", "currency")
    )
    months = sorted({row["month"].strftime("%Y-%m") for row in revenue})
    revenue_by_currency: dict[str, list[float]] = {}
    for row in revenue:
        series = revenue_by_currency.setdefault(row["currency"], [0.0] * len(months))
        series[months.index(row["month"].strftime("%Y-%m"))] = float(row["revenue"] or 0)
    webhooks = (
        WebhookDelivery.objects.filter(created_at__gte=since)
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(
            succeeded=Count("id", filter=Q(status="succeeded")),
            failed=Count("id", filter=Q(status="failed")),
            pending=Count("id", filter=Q(status="pending")),
        )
        .order_by("day")
    )
    return {
        "tasks": _series(tasks, "day", "tasks", "tokens", "cost"),
        "roi": _series(roi, "organization__name", "money_saved", "time_saved_minutes"),
        "validations": _series(validations, "day", "valid", "invalid"),
        "collisions": _series(collisions, "severity", "open"),
        "revenue": {"x": months, "by_currency": revenue_by_currency},
        "webhooks": _series(webhooks, "day", "succeeded", "failed", "pending"),
    }


def dashboard_data(*, days: int = CHART_DAYS) -> dict:
    now = timezone.now()
    return {
        "kpis": dashboard_kpis(now=now, days=days),
        "charts": {**dashboard_charts(now=now, days=days), "days": days},
    }
