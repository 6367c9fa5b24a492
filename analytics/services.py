"""ROI aggregation: processed tasks rolled up into ``roi_metrics`` per organization and period.

Set-based SQL: one ``INSERT ... SELECT ... GROUP BY ... ON CONFLICT DO UPDATE`` per period type,
so recomputing any range is idempotent and no task is ever loaded into Python.

- period starts: day; ISO week (Monday); month — in the organization's ``settings.timezone`` on
  PostgreSQL (falling back to ``TIME_ZONE`` when missing or unknown); in UTC on SQLite, which
  has no time zone database.
- time saved: per completed task, the organization's override for the prompt's slug, else for
  its category (``settings.minutes_saved_overrides``), else the prompt's ``minutes_saved_estimate``.
- money saved: time saved × ``settings.hourly_rate`` (else system config ``roi.default_hourly_rate``)
  − the AI cost of every task in the period.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from settings_app.runtime import system_config_get

from .models import RoiMetric, TelemetryEvent

PERIOD_TYPES = ("day", "week", "month")
_NUMBER = r"^[0-9]+(\.[0-9]+)?$"

_POSTGRES_PERIOD = {
    "day": "date_trunc('day', t.created_at AT TIME ZONE z.tz)::date",
    "week": "date_trunc('week', t.created_at AT TIME ZONE z.tz)::date",
    "month": "date_trunc('month', t.created_at AT TIME ZONE z.tz)::date",
}
_SQLITE_PERIOD = {
    "day": "date(t.created_at)",
    "week": "date(t.created_at, 'weekday 0', '-6 days')",
    "month": "date(t.created_at, 'start of month')",
}

_UPSERT_COLUMNS = (
    "tasks_completed", "tasks_failed", "time_saved_minutes", "money_saved", "currency", "ai_cost_usd",
    "tokens_input", "tokens_output", "avg_execution_time_ms", "active_users_count", "updated_at",
)  # fmt: skip
_ON_CONFLICT = "ON CONFLICT (organization_id, period_type, period_start) DO UPDATE SET " + ", ".join(
    f"{column} = excluded.{column}" for column in _UPSERT_COLUMNS
)

# Two levels, so per-row work stays minimal: tasks are first summed per organization, period,
# prompt and user (a hash aggregate, no sort); the minutes saved, the money and the distinct
# users are then computed on those few groups. Organization settings are read once (MATERIALIZED).
_POSTGRES_SQL = """
WITH z AS MATERIALIZED (
    SELECT o.id,
           CASE WHEN o.settings->>'timezone' IN (SELECT name FROM pg_timezone_names)
                THEN o.settings->>'timezone' ELSE %(default_tz)s END AS tz,
           CASE WHEN o.settings->>'hourly_rate' ~ %(number)s
                THEN (o.settings->>'hourly_rate')::numeric ELSE %(default_hourly_rate)s END AS hourly_rate,
           COALESCE(NULLIF(o.settings->>'currency', ''), 'USD') AS currency,
           o.settings->'minutes_saved_overrides' AS overrides
    FROM organizations o
),
task_groups AS (
    SELECT t.organization_id, {period} AS period_start, t.prompt_id, t.user_id,
           COUNT(*) FILTER (WHERE t.status = 'completed') AS completed,
           COUNT(*) FILTER (WHERE t.status = 'failed') AS failed,
           SUM(t.cost_usd) AS cost, SUM(t.tokens_input) AS tokens_input, SUM(t.tokens_output) AS tokens_output,
           SUM(t.execution_time_ms) FILTER (WHERE t.status = 'completed') AS completed_ms
    FROM processed_tasks t
    JOIN z ON z.id = t.organization_id
    WHERE t.created_at >= %(scan_from)s AND t.created_at < %(scan_to)s
    GROUP BY 1, 2, 3, 4
)
INSERT INTO roi_metrics (
    id, organization_id, period_type, period_start, tasks_completed, tasks_failed, time_saved_minutes,
    money_saved, currency, ai_cost_usd, tokens_input, tokens_output, avg_execution_time_ms,
    active_users_count, created_at, updated_at
)
SELECT gen_random_uuid(), g.organization_id, %(period_type)s, g.period_start,
       SUM(g.completed), SUM(g.failed),
       ROUND(SUM(g.completed * m.minutes), 2),
       ROUND(SUM(g.completed * m.minutes) / 60 * MAX(z.hourly_rate) - SUM(g.cost), 4),
       MAX(z.currency),
       SUM(g.cost), SUM(g.tokens_input), SUM(g.tokens_output),
       COALESCE(ROUND(SUM(g.completed_ms)::numeric / NULLIF(SUM(g.completed), 0)), 0),
       COUNT(DISTINCT g.user_id),
       now(), now()
FROM task_groups g
JOIN z ON z.id = g.organization_id
LEFT JOIN prompts_master p ON p.id = g.prompt_id
CROSS JOIN LATERAL (
    SELECT COALESCE(
        CASE WHEN z.overrides->>p.slug ~ %(number)s THEN (z.overrides->>p.slug)::numeric END,
        CASE WHEN z.overrides->>p.category ~ %(number)s THEN (z.overrides->>p.category)::numeric END,
        p.minutes_saved_estimate, 0) AS minutes
) m
WHERE g.period_start BETWEEN %(first_period)s AND %(last_period)s
GROUP BY g.organization_id, g.period_start
"""

_SQLITE_SQL = """
INSERT INTO roi_metrics (
    id, organization_id, period_type, period_start, tasks_completed, tasks_failed, time_saved_minutes,
    money_saved, currency, ai_cost_usd, tokens_input, tokens_output, avg_execution_time_ms,
    active_users_count, created_at, updated_at
)
SELECT lower(hex(randomblob(16))), organization_id, %(period_type)s, period_start,
       SUM(status = 'completed'), SUM(status = 'failed'),
       ROUND(SUM(minutes_saved), 2),
       ROUND(SUM(minutes_saved) / 60.0 * MAX(hourly_rate) - SUM(cost_usd), 4),
       MAX(currency), SUM(cost_usd), SUM(tokens_input), SUM(tokens_output),
       COALESCE(ROUND(AVG(CASE WHEN status = 'completed' THEN execution_time_ms END)), 0),
       COUNT(DISTINCT user_id),
       %(now)s, %(now)s
FROM (
    SELECT t.organization_id, {period} AS period_start, t.status, t.user_id, t.cost_usd,
           t.tokens_input, t.tokens_output, t.execution_time_ms,
           COALESCE(CAST(json_extract(o.settings, '$.hourly_rate') AS REAL), %(default_hourly_rate)s) AS hourly_rate,
           COALESCE(NULLIF(json_extract(o.settings, '$.currency'), ''), 'USD') AS currency,
           CASE WHEN t.status = 'completed' THEN COALESCE(
                CAST(json_extract(o.settings, '$.minutes_saved_overrides."' || p.slug || '"') AS REAL),
                CAST(json_extract(o.settings, '$.minutes_saved_overrides."' || p.category || '"') AS REAL),
                p.minutes_saved_estimate, 0) ELSE 0 END AS minutes_saved
    FROM processed_tasks t
    JOIN organizations o ON o.id = t.organization_id
    LEFT JOIN prompts_master p ON p.id = t.prompt_id
    WHERE t.created_at >= %(scan_from)s AND t.created_at < %(scan_to)s
) AS task_rows
WHERE period_start BETWEEN %(first_period)s AND %(last_period)s
GROUP BY organization_id, period_start
"""


@dataclass(frozen=True)
class PeriodRange:
    first: date  # start of the first period
    last: date  # start of the last period
    end: date  # first day after the last period


def period_start(*, period_type: str, day: date) -> date:
    if period_type == "day":
        return day
    if period_type == "week":
        return day - timedelta(days=day.weekday())
    if period_type == "month":
        return day.replace(day=1)
    raise ValueError(f"Unknown period type {period_type!r}")


def _next_period(*, period_type: str, start: date) -> date:
    if period_type == "day":
        return start + timedelta(days=1)
    if period_type == "week":
        return start + timedelta(days=7)
    return (start.replace(day=28) + timedelta(days=4)).replace(day=1)


def period_range(*, period_type: str, date_from: date, date_to: date) -> PeriodRange:
    """The whole periods that cover ``date_from``..``date_to`` (a week or month is never cut)."""
    if date_to < date_from:
        raise ValueError("date_to is before date_from")
    last = period_start(period_type=period_type, day=date_to)
    return PeriodRange(
        first=period_start(period_type=period_type, day=date_from),
        last=last,
        end=_next_period(period_type=period_type, start=last),
    )


def roi_aggregate(*, period_type: str, date_from: date, date_to: date) -> int:
    """Recompute the ``period_type`` rows of every organization for the periods covering the
    range. Returns the number of rows written."""
    if period_type not in PERIOD_TYPES:
        raise ValueError(f"Unknown period type {period_type!r}; use one of {PERIOD_TYPES}")
    periods = period_range(period_type=period_type, date_from=date_from, date_to=date_to)
    # Scan a day beyond each end so every time zone's local day is complete; the period
    # filter then keeps exactly the periods asked for.
    params = {
        "period_type": period_type,
        "first_period": periods.first,
        "last_period": periods.last,
        "scan_from": _utc_midnight(periods.first - timedelta(days=1)),
        "scan_to": _utc_midnight(periods.end + timedelta(days=1)),
        "number": _NUMBER,
        "default_tz": settings.TIME_ZONE,
        "default_hourly_rate": default_hourly_rate(),
    }
    if connection.vendor == "postgresql":
        sql = _POSTGRES_SQL.format(period=_POSTGRES_PERIOD[period_type])
    else:
        sql = _SQLITE_SQL.format(period=_SQLITE_PERIOD[period_type])
        params["now"] = timezone.now()
        params["first_period"] = periods.first.isoformat()
        params["last_period"] = periods.last.isoformat()
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Enough memory to group a large range by hashing instead of an on-disk sort; local
            # to this transaction.
            cursor.execute("SELECT set_config('work_mem', %s, true)", [settings.ROI_AGGREGATION_WORK_MEM])
        cursor.execute(f"{sql} {_ON_CONFLICT}", params)
        return cursor.rowcount


def default_hourly_rate() -> Decimal:
    """The hourly rate for organizations that set none (system config ``roi.default_hourly_rate``)."""
    rate = system_config_get("roi.default_hourly_rate", Decimal("0"), Decimal)
    return rate if rate.is_finite() and rate >= 0 else Decimal("0")


def roi_aggregate_all(*, date_from: date, date_to: date) -> dict[str, int]:
    return {ptype: roi_aggregate(period_type=ptype, date_from=date_from, date_to=date_to) for ptype in PERIOD_TYPES}


def _utc_midnight(day: date):
    return datetime.combine(day, time.min, tzinfo=UTC)


# --------------------------------------------------------------------------------------------
# Telemetry
# --------------------------------------------------------------------------------------------

TELEMETRY_BATCH_MAX = 500
TELEMETRY_RETENTION_DEFAULT_DAYS = 90


def telemetry_ingest(*, organization, user, events: list[dict]) -> int:
    """Insert a validated batch of events for the caller, all or nothing. Returns the count."""
    rows = [TelemetryEvent(organization=organization, user=user, **event) for event in events]
    with transaction.atomic():
        TelemetryEvent.objects.bulk_create(rows, batch_size=TELEMETRY_BATCH_MAX)
    return len(rows)


def telemetry_retention_days() -> int:
    days = system_config_get("telemetry.retention_days", TELEMETRY_RETENTION_DEFAULT_DAYS, int)
    return days if days > 0 else TELEMETRY_RETENTION_DEFAULT_DAYS


def telemetry_purge(*, older_than_days: int | None = None, chunk_size: int = 10_000) -> int:
    """Delete events past retention, in chunks so no single statement locks the table long."""
    cutoff = timezone.now() - timedelta(days=older_than_days or telemetry_retention_days())
    deleted = 0
    while True:
        ids = list(TelemetryEvent.objects.filter(created_at__lt=cutoff).values_list("pk", flat=True)[:chunk_size])
        if not ids:
            return deleted
        deleted += TelemetryEvent.objects.filter(pk__in=ids).delete()[0]


# --------------------------------------------------------------------------------------------
# ROI summary
# --------------------------------------------------------------------------------------------


def roi_month_summary(*, organization, today: date) -> dict:
    """This month so far against last month, from the month rows."""
    this_month = today.replace(day=1)
    last_month = (this_month - timedelta(days=1)).replace(day=1)
    rows = {
        row.period_start: row
        for row in RoiMetric.objects.filter(
            organization=organization, period_type="month", period_start__in=[this_month, last_month]
        )
    }
    fields = ("tasks_completed", "time_saved_minutes", "money_saved", "ai_cost_usd", "active_users_count")

    def figures(start):
        row = rows.get(start)
        return {"period_start": start, **{field: getattr(row, field) if row else 0 for field in fields}}

    current, previous = figures(this_month), figures(last_month)
    change = {}
    for field in fields:
        before, now = Decimal(previous[field]), Decimal(current[field])
        change[field] = None if before == 0 else ((now - before) / abs(before) * 100).quantize(Decimal("0.1"))
    return {
        "currency": (organization.settings or {}).get("currency", "USD"),
        "this_month": current,
        "last_month": previous,
        "change_percent": change,
    }
