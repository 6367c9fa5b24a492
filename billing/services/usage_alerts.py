"""Usage alerts: when an organization's AI usage this month reaches 80% and 100% of what its
plan includes (requests, tokens, USD of AI spend), a ``usage.threshold_reached`` event and an
e-mail to the billing contacts — once per threshold, metric and month, however often the check
runs or how many run at once (a unique row per alert decides)."""

from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from billing.models import PlanBillingTerms, Subscription, UsageAlert
from licensing.models import LicenseUsageLog
from licensing.usage import usage_period
from settings_app.events import emit_event

from .notices import usage_alert_notice_enqueue

THRESHOLDS = (80, 100)
_ALERTED = (Subscription.Status.TRIALING, Subscription.Status.ACTIVE, Subscription.Status.PAST_DUE)


def _metrics(row: dict, terms: dict) -> list[tuple[str, Decimal, Decimal]]:
    """``(metric, used, included)`` for each allowance the plan states."""
    pairs = (
        ("ai_requests", row["ai_requests_count"], terms["included_ai_requests"]),
        ("tokens", row["tokens_input"] + row["tokens_output"], terms["included_tokens"]),
        ("ai_spend", row["calculated_cost"], terms["included_ai_spend"]),
    )
    return [(metric, Decimal(used), Decimal(included)) for metric, used, included in pairs if included]


def usage_alert_raise(*, subscription_id, organization_id, month, metric: str, threshold: int, used, included) -> bool:
    """Record that a threshold was reached and tell the organization (event and e-mail), unless
    it was already; returns whether this call raised it."""
    try:
        with transaction.atomic():
            alert = UsageAlert.objects.create(
                subscription_id=subscription_id,
                organization_id=organization_id,
                period_start=month,
                metric=metric,
                threshold_percent=threshold,
                used=used,
                included=included,
            )
            emit_event(
                "usage.threshold_reached",
                organization=organization_id,
                payload={
                    "subscription": str(subscription_id),
                    "period_start": month.isoformat(),
                    "metric": metric,
                    "threshold_percent": threshold,
                    "used": str(used),
                    "included": str(included),
                },
            )
            usage_alert_notice_enqueue(alert_id=alert.pk)
    except IntegrityError:
        return False  # alerted already (by an earlier or a concurrent run)
    return True


def usage_alerts_check(*, now=None) -> int:
    """Alert every subscription whose usage this month crossed a threshold not alerted yet: one
    query reads the month's usage of every subscribed license with its plan's allowances.
    Returns how many alerts were raised."""
    month = usage_period((now or timezone.now()).date())[0]
    terms_fields = ("included_ai_requests", "included_tokens", "included_ai_spend")
    terms = {
        row["plan_id"]: row
        for row in PlanBillingTerms.objects.values("plan_id", *terms_fields).filter(
            plan__subscriptions__status__in=_ALERTED
        )
        if any(row[name] for name in terms_fields)
    }
    if not terms:
        return 0
    usage = LicenseUsageLog.objects.filter(
        period_start=month,
        license__subscription__status__in=_ALERTED,
        license__subscription__plan_id__in=list(terms),
    ).values(
        "ai_requests_count",
        "tokens_input",
        "tokens_output",
        "calculated_cost",
        "license__subscription__id",
        "license__subscription__plan_id",
        "license__subscription__organization_id",
    )
    done = set(
        UsageAlert.objects.filter(period_start=month).values_list("subscription_id", "metric", "threshold_percent")
    )
    raised = 0
    for row in usage:
        subscription_id = row["license__subscription__id"]
        for metric, used, included in _metrics(row, terms[row["license__subscription__plan_id"]]):
            for threshold in THRESHOLDS:
                if used * 100 < included * threshold or (subscription_id, metric, threshold) in done:
                    continue
                raised += usage_alert_raise(
                    subscription_id=subscription_id,
                    organization_id=row["license__subscription__organization_id"],
                    month=month,
                    metric=metric,
                    threshold=threshold,
                    used=used,
                    included=included,
                )
    return raised
