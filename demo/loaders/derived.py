"""Rows derived from the seeded ones, recomputed by the real jobs or upserts: ROI, license usage,
license, product, provider-key and coupon counters.
"""

import calendar
import uuid
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.db import models
from django.db.models import Avg, Count, OuterRef, Subquery
from django.db.models.functions import Coalesce, TruncMonth
from django.utils import timezone

from aimesh.models import AIApiKey
from analytics.services import roi_aggregate_all
from billing.models import (
    Coupon,
    Order,
)
from demo.loaders.base import HISTORY_DAYS, INSERT_BATCH, DemoRun
from licensing.models import License, LicenseUsageLog
from licensing.rollup import usage_log_rollup
from marketplace.models import (
    AssetDownload,
    Product,
    ProductReview,
)
from operations.models import ProcessedTask

_CENT = Decimal("0.01")


def _month_bounds(day: date) -> tuple[date, date]:
    last = calendar.monthrange(day.year, day.month)[1]
    return day.replace(day=1), day.replace(day=last)


def refresh_derived(demo: DemoRun, *, organization_ids: Sequence[uuid.UUID]) -> None:
    _refresh_roi_days(organization_ids=organization_ids, since=demo.now - timedelta(days=HISTORY_DAYS + 1))
    _refresh_usage_logs(organization_ids=organization_ids, since=demo.now - timedelta(days=HISTORY_DAYS + 1))
    _refresh_license_counters(organization_ids=organization_ids, now=demo.now)
    _refresh_product_stats(product_ids=[product.pk for product in demo.products.values()])
    _refresh_coupon_redemptions(coupon_ids=[demo.coupons["WELCOME10"].pk])
    _refresh_key_usage(key_ids=[key.pk for key in demo.api_keys.values()])


def _refresh_roi_days(*, organization_ids: Sequence[uuid.UUID], since: datetime) -> None:
    """Recompute the ROI rows of the demo's history with the real aggregation job."""
    roi_aggregate_all(date_from=since.date(), date_to=timezone.now().date())


def _refresh_usage_logs(*, organization_ids: Sequence[uuid.UUID], since: datetime) -> None:
    """Each license's usage per calendar month: the request counts as metering keeps them (one per
    task that reached a provider), then tokens and cost recomputed from the tasks by the nightly
    roll-up (``licensing.rollup``), which leaves the request counts alone."""
    first_month = since.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    requests = (
        ProcessedTask.objects.filter(
            organization_id__in=organization_ids, license__isnull=False, created_at__gte=first_month
        )
        .exclude(status__in=[ProcessedTask.Status.PENDING, ProcessedTask.Status.CANCELLED])
        .annotate(month=TruncMonth("created_at", output_field=models.DateField()))
        .order_by()
        .values("license_id", "organization_id", "month")
        .annotate(requests=Count("id"))
    )
    rows = []
    for month in requests:
        start, end = _month_bounds(month["month"])
        rows.append(
            LicenseUsageLog(
                organization_id=month["organization_id"],
                license_id=month["license_id"],
                period_start=start,
                period_end=end,
                ai_requests_count=month["requests"],
            )
        )
    LicenseUsageLog.objects.bulk_create(
        rows,
        batch_size=INSERT_BATCH,
        update_conflicts=True,
        unique_fields=["license", "period_start", "period_end"],
        update_fields=["ai_requests_count", "updated_at"],
    )
    month = first_month.date()
    while month <= timezone.now().date():
        usage_log_rollup(month=month)
        month = _month_bounds(month)[1] + timedelta(days=1)


def _refresh_license_counters(*, organization_ids: Sequence[uuid.UUID], now: datetime) -> None:
    """``ai_requests_used``: the requests each license made this month."""
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    used = (
        ProcessedTask.objects.filter(license=OuterRef("pk"), created_at__gte=month_start)
        .exclude(status__in=[ProcessedTask.Status.PENDING, ProcessedTask.Status.CANCELLED])
        .order_by()
        .values("license")
        .annotate(n=Count("id"))
        .values("n")
    )
    License.all_objects.filter(organization_id__in=organization_ids).update(
        ai_requests_used=Coalesce(Subquery(used), 0)
    )


def _refresh_product_stats(*, product_ids: Sequence[uuid.UUID]) -> None:
    for product_id in product_ids:
        reviews = ProductReview.objects.filter(product_id=product_id).aggregate(avg=Avg("rating"), n=Count("id"))
        downloads = AssetDownload.objects.filter(release__product_id=product_id).count()
        avg = Decimal(str(reviews["avg"] or 0)).quantize(_CENT, rounding=ROUND_HALF_UP)
        Product.all_objects.filter(pk=product_id).update(
            avg_rating=avg, review_count=reviews["n"], download_count=downloads
        )


def _refresh_key_usage(*, key_ids: Sequence[uuid.UUID]) -> None:
    """What each provider key has served: requests that reached it, and the last one's time."""
    for key_id in key_ids:
        served = ProcessedTask.objects.filter(api_key_id=key_id).exclude(
            status__in=[ProcessedTask.Status.PENDING, ProcessedTask.Status.CANCELLED]
        )
        stats = served.aggregate(n=Count("id"), last=models.Max("created_at"))
        AIApiKey.objects.filter(pk=key_id).update(usage_count=stats["n"], last_used_at=stats["last"])


def _refresh_coupon_redemptions(*, coupon_ids: Sequence[uuid.UUID]) -> None:
    """Coupons without a redemption cap count the paid orders that used them."""
    redeemed = (
        Order.objects.filter(coupon=OuterRef("pk"), status__in=[Order.Status.PAID, Order.Status.REFUNDED])
        .order_by()
        .values("coupon")
        .annotate(n=Count("id"))
        .values("n")
    )
    Coupon.objects.filter(pk__in=coupon_ids, max_redemptions__isnull=True).update(
        times_redeemed=Coalesce(Subquery(redeemed), 0)
    )
