"""License usage roll-up: each license's ``license_usage_log`` row for a month recomputed from its
processed tasks, so the per-request counters (``licensing.usage``) cannot drift for long.

One set-based upsert per month; no task is loaded into Python. The request count stays the
metering counter's to keep (it is only set when the row is new).
"""

import calendar
from datetime import UTC, date, datetime, time, timedelta

from django.db import connection, transaction
from django.utils import timezone

_USAGE_ROLLUP_SQL = """
INSERT INTO license_usage_log (
    id, organization_id, license_id, period_start, period_end, ai_requests_count, tokens_input,
    tokens_output, tokens_cached, calculated_cost, created_at, updated_at
)
SELECT {new_id}, l.organization_id, t.license_id, %(period_start)s, %(period_end)s, COUNT(*),
       SUM(t.tokens_input), SUM(t.tokens_output), SUM(t.tokens_cached), SUM(t.cost_usd), {now}, {now}
FROM processed_tasks t
JOIN licenses l ON l.id = t.license_id
WHERE t.license_id IS NOT NULL AND t.created_at >= %(scan_from)s AND t.created_at < %(scan_to)s
GROUP BY l.organization_id, t.license_id
ON CONFLICT (license_id, period_start, period_end) DO UPDATE SET
    tokens_input = excluded.tokens_input, tokens_output = excluded.tokens_output,
    tokens_cached = excluded.tokens_cached, calculated_cost = excluded.calculated_cost,
    updated_at = excluded.updated_at
"""


def usage_log_rollup(*, month: date) -> int:
    """Recompute the tokens and cost of every license's usage row for ``month`` from its
    processed tasks (one set-based upsert), correcting any drift of the per-request counters.
    The request count is the metering counter's to keep; a missing row starts from the tasks."""
    period_start = month.replace(day=1)
    period_end = month.replace(day=calendar.monthrange(month.year, month.month)[1])
    params = {
        "period_start": period_start,
        "period_end": period_end,
        "scan_from": datetime.combine(period_start, time.min, tzinfo=UTC),
        "scan_to": datetime.combine(period_end + timedelta(days=1), time.min, tzinfo=UTC),
    }
    if connection.vendor == "postgresql":
        sql = _USAGE_ROLLUP_SQL.format(new_id="gen_random_uuid()", now="now()")
    else:
        sql = _USAGE_ROLLUP_SQL.format(new_id="lower(hex(randomblob(16)))", now="%(now)s")
        params.update(now=timezone.now(), period_start=period_start.isoformat(), period_end=period_end.isoformat())
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount
