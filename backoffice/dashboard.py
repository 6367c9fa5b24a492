"""The staff dashboard on the admin index: KPIs and charts, each from one aggregated query."""

from datetime import timedelta
from decimal import Decimal

from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate, TruncMonth
from django.utils import timezone

from analytics.models import RoiMetric
from billing.models import Order
from identity.models import Organization
from ipcontrol.models import LicenseCollision, LicenseValidation
from licensing.models import License
from operations.models import ProcessedTask
from settings_app.models import WebhookDelivery

CHART_DAYS = 30


def _series(rows, x, *ys):
    return {"x": [str(row[x]) for row in rows], **{y: [float(row[y] or 0) for row in rows] for y in ys}}


def dashboard_kpis(*, now) -> dict:
    month_start = now.date().replace(day=1)
    return {
        "organizations": Organization.objects.count(),
        "live_licenses": License.objects.filter(status__in=[License.Status.ACTIVE, License.Status.TRIAL]).count(),
        "tasks_today": ProcessedTask.objects.filter(created_at__date=now.date()).count(),
        "open_collisions": LicenseCollision.objects.filter(resolved_at__isnull=True).count(),
        "revenue_this_month": Order.objects.filter(status=Order.Status.PAID, paid_at__date__gte=month_start).aggregate(
            total=Sum("total")
        )["total"]
        or Decimal("0"),
    }


def dashboard_charts(*, now) -> dict:
    since = now - timedelta(days=CHART_DAYS)
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
    validations = (
        LicenseValidation.objects.filter(created_at__gte=since)
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(valid=Count("id", filter=Q(is_valid=True)), invalid=Count("id", filter=Q(is_valid=False)))
        .order_by("day")
    )
    collisions = (
        LicenseCollision.objects.filter(resolved_at__isnull=True)
        .values("severity")
        .annotate(open=Count("id"))
        .order_by("severity")
    )
    revenue = (
        Order.objects.filter(status=Order.Status.PAID, paid_at__gte=now - timedelta(days=365))
        .annotate(month=TruncMonth("paid_at"))
        .values("month")
        .annotate(revenue=Sum("total"))
        .order_by("month")
    )
    webhooks = (
        WebhookDelivery.objects.filter(created_at__gte=now - timedelta(days=7))
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
        "revenue": {
            "x": [row["month"].strftime("%Y-%m") for row in revenue],
            "revenue": [float(row["revenue"] or 0) for row in revenue],
        },
        "webhooks": _series(webhooks, "day", "succeeded", "failed", "pending"),
    }


def dashboard_data() -> dict:
    now = timezone.now()
    return {"kpis": dashboard_kpis(now=now), "charts": dashboard_charts(now=now)}
