"""Benchmark: ROI aggregation of 1,000,000 processed tasks (100 organizations, 90 days) on
PostgreSQL, next to one hand-written SQL statement computing the same day-level numbers.

    DATABASE_URL=postgres://user@host:port/roi_bench REDIS_URL=redis://... \\
        python bench/analytics/roi_bench.py [--tasks 1000000] [--orgs 100] [--days 90]

It migrates the database it is given (use a scratch one), fills it with generate_series (fast),
then times each side three times and prints the best of each and their ratio.
Target: the aggregation within 1.5x of the hand-written statement, and under 10 s.
"""

import argparse
import os
import sys
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "celaest.settings")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from analytics.services import roi_aggregate  # noqa: E402

# Each task copies a template row made by the ORM (so every column has its default), varying
# what the aggregation reads.
VARIED = {
    "id": "gen_random_uuid()",
    "organization_id": "(SELECT id FROM bench_orgs WHERE n = 1 + g %% %(orgs)s)",
    "prompt_id": "(SELECT id FROM bench_prompts WHERE n = 1 + g %% 20)",
    "status": "CASE WHEN g %% 10 = 0 THEN 'failed' ELSE 'completed' END",
    "tokens_input": "100 + g %% 900",
    "tokens_output": "50 + g %% 400",
    "cost_usd": "((g %% 1000) / 100000.0)::numeric(18, 8)",
    "execution_time_ms": "200 + g %% 3000",
    "created_at": "now() - ((g %% (%(days)s * 24 * 60)) * interval '1 minute')",
}


HAND_WRITTEN = """
CREATE TEMP TABLE hand_written_roi AS
SELECT t.organization_id, date_trunc('day', t.created_at)::date AS day,
       COUNT(*) FILTER (WHERE t.status = 'completed') AS completed,
       COUNT(*) FILTER (WHERE t.status = 'failed') AS failed,
       SUM(CASE WHEN t.status = 'completed' THEN p.minutes_saved_estimate ELSE 0 END) AS minutes,
       SUM(t.cost_usd) AS cost, SUM(t.tokens_input) AS tokens_in, SUM(t.tokens_output) AS tokens_out,
       AVG(t.execution_time_ms) FILTER (WHERE t.status = 'completed') AS avg_ms,
       COUNT(DISTINCT t.user_id) AS users
FROM processed_tasks t LEFT JOIN prompts_master p ON p.id = t.prompt_id
WHERE t.created_at >= %(since)s
GROUP BY 1, 2
"""


def fill(cursor, *, orgs: int, days: int, tasks: int) -> None:
    from decimal import Decimal

    from aimesh.models import Prompt
    from identity.models import Organization
    from operations.models import ProcessedTask

    timezones = ["UTC", "Europe/Madrid", "America/New_York", "Asia/Tokyo"]
    organizations = [
        Organization.objects.get_or_create(
            slug=f"roi-bench-{n}",
            defaults={
                "name": f"Bench org {n}",
                "settings": {"hourly_rate": str(30 + n % 50), "timezone": timezones[n % 4]},
            },
        )[0]
        for n in range(1, orgs + 1)
    ]
    prompts = [
        Prompt.objects.get_or_create(
            slug=f"roi-bench-prompt-{n}", version=1,
            defaults={"name": f"Prompt {n}", "category": f"cat-{n % 5}", "minutes_saved_estimate": Decimal(n % 15 + 1)},
        )[0]
        for n in range(1, 21)
    ]  # fmt: skip
    template = ProcessedTask.objects.create(organization=organizations[0], status="completed")
    cursor.execute("CREATE TEMP TABLE bench_orgs (n int PRIMARY KEY, id uuid)")
    cursor.executemany("INSERT INTO bench_orgs VALUES (%s, %s)", [(i + 1, o.pk) for i, o in enumerate(organizations)])
    cursor.execute("CREATE TEMP TABLE bench_prompts (n int PRIMARY KEY, id uuid)")
    cursor.executemany("INSERT INTO bench_prompts VALUES (%s, %s)", [(i + 1, p.pk) for i, p in enumerate(prompts)])
    columns = [f.column for f in ProcessedTask._meta.concrete_fields if not f.generated]
    select = ", ".join(VARIED.get(column, f"t.{column}") for column in columns)
    cursor.execute(
        f"INSERT INTO processed_tasks ({', '.join(columns)}) "  # noqa: S608 - column names from the model
        f"SELECT {select} FROM processed_tasks t, generate_series(1, %(tasks)s) g WHERE t.id = %(template)s",
        {"orgs": orgs, "days": days, "tasks": tasks, "template": template.pk},
    )
    ProcessedTask.objects.filter(pk=template.pk).delete()


def best_of(runs: int, action) -> float:
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        timings.append(time.perf_counter() - started)
    return min(timings)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--orgs", type=int, default=100)
    parser.add_argument("--days", type=int, default=90)
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        print("This benchmark needs PostgreSQL (DATABASE_URL=postgres://...).")
        return 2

    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM processed_tasks")
        if cursor.fetchone()[0] < args.tasks:
            started = time.perf_counter()
            fill(cursor, orgs=args.orgs, days=args.days, tasks=args.tasks)
            print(f"filled {args.tasks:,} tasks in {time.perf_counter() - started:.1f} s")
        cursor.execute("ANALYZE processed_tasks; ANALYZE organizations; ANALYZE prompts_master")

    today = date.today()
    first = today - timedelta(days=args.days)

    def ours():
        roi_aggregate(period_type="day", date_from=first, date_to=today)

    def hand_written():
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE IF EXISTS hand_written_roi")
            cursor.execute(HAND_WRITTEN, {"since": first})

    ours()  # warm the cache the same way for both
    hand = best_of(3, hand_written)
    aggregation = best_of(3, ours)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM roi_metrics WHERE period_type = 'day'")
        rows = cursor.fetchone()[0]
    print(f"tasks: {args.tasks:,}  organizations: {args.orgs}  days: {args.days}  day rows: {rows:,}")
    print(f"hand-written statement: {hand:.2f} s")
    print(f"roi_aggregate(day):     {aggregation:.2f} s  ({aggregation / hand:.2f}x)")
    print(f"target: <= 1.5x and < 10 s -> {'met' if aggregation <= 1.5 * hand and aggregation < 10 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
