#!/usr/bin/env python
"""Renewal benchmark (issue 21): 100,000 subscriptions due at one boundary, with usage lines,
renewed by the beat job's service (``billing.services.renewals.subscriptions_renew_due``).

Seeds (once, see seed.py) a template database with N subscriptions due at one boundary, copies
it (``CREATE DATABASE ... TEMPLATE``, seconds) so every run starts on the same world, previews a
sample's renewal invoices through the per-subscription path (``subscription_upcoming_invoice``),
runs the renewal job, and prints the time, renewals/s, the queries (inside the batches'
transactions and outside them: the due list and the collections) and the invoices issued. Then
checks: exactly one renewal invoice per subscription, gapless numbers, every subscription moved
to its next period, every license valid through its invoice's due date plus the grace period
(trials converted), and the sample's invoices equal to their previews (lines and amounts).

Collection: bank transfers' first attempts are recorded in one UPDATE per batch (``pending``, no
network). One subscription in twenty pays by card: the job queues each card charge
(``billing.collect_invoice``, for the Celery workers); the benchmark then makes those charges as
the workers would, on a few threads, through the Stripe SDK against the local server that speaks
Stripe's API (``billing/tests/stripe_server.py``, in this process), and prints their time apart.

    bench/services.sh start   # PostgreSQL on :55432, Redis on :56379
    .venv/bin/python bench/billing/renewal_bench.py [--count 100000] [--batch-size 2000] [--reseed]

DATABASE_URL (default postgres://postgres@127.0.0.1:55432/celaest_bench_billing) names the
database the run uses; the template is ``<name>_seed_<count>``. REDIS_URL defaults to
redis://127.0.0.1:56379/11.
"""

import argparse
import json
import os
import random
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
from cpu import cpu_by_group  # noqa: E402 - bench/ is not a package

#: PostgreSQL's CPU: the bench cluster's postmaster (its ended backends) and the run's live backends
PG_GROUPS = ("bench-services/pg/data", "postgres: postgres celaest_bench_billing ")

CHARGE_THREADS = 4
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:55432/celaest_bench_billing"
ENV = {
    "DJANGO_SETTINGS_MODULE": "celaest.settings",
    "CELAEST_ENV_FILE": "/nonexistent",
    "DEBUG": "false",
    "LOG_LEVEL": "WARNING",
    "SECRET_KEY": "bench-only-secret-key-" + "x" * 40,
    "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:56379/11"),
}


def _admin(database_url: str, sql: str) -> None:
    import psycopg

    url = urlparse(database_url)
    with psycopg.connect(
        host=url.hostname, port=url.port, user=url.username, dbname="postgres", autocommit=True
    ) as conn:
        conn.execute(sql)


def _exists(database_url: str, name: str) -> bool:
    import psycopg

    url = urlparse(database_url)
    with psycopg.connect(host=url.hostname, port=url.port, user=url.username, dbname="postgres") as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is not None


def _with_name(database_url: str, name: str) -> str:
    return urlparse(database_url)._replace(path=f"/{name}").geturl()


def prepare(database_url: str, count: int, reseed: bool) -> None:
    """The template seeded once (migrated, then ``seed``), copied to the run's database."""
    name = urlparse(database_url).path.lstrip("/")
    template = f"{name}_seed_{count}"
    if reseed or not _exists(database_url, template):
        _admin(database_url, f'DROP DATABASE IF EXISTS "{template}"')
        _admin(database_url, f'CREATE DATABASE "{template}"')
        env = {**os.environ, **ENV, "DATABASE_URL": _with_name(database_url, template)}
        started = time.perf_counter()
        subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
        migrated = time.perf_counter()
        subprocess.run([sys.executable, __file__, "--phase", "seed", "--count", str(count)], env=env, check=True)
        seeded = time.perf_counter() - migrated
        print(f"seeded {count:,} subscriptions: migrate {migrated - started:.1f} s, seed {seeded:.1f} s")
    _admin(database_url, f'DROP DATABASE IF EXISTS "{name}"')
    started = time.perf_counter()
    _admin(database_url, f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    print(f"copied the template in {time.perf_counter() - started:.1f} s")


def _django():
    import django

    django.setup()


class QueryCounter:
    """Counts the statements the run sends, inside a transaction (the batches) or outside."""

    def __init__(self):
        self.inside = self.outside = 0

    def attach(self, sender, connection, **kwargs):
        connection.execute_wrappers.append(self)

    def __call__(self, execute, sql, params, many, context):
        if context["connection"].in_atomic_block:
            self.inside += 1
        else:
            self.outside += 1
        return execute(sql, params, many, context)


def renew(*, batch_size: int, workers: int) -> dict:
    """Run the renewal job (the service the beat task calls), counting every connection's queries."""
    from django.db import connection
    from django.db.backends.signals import connection_created

    from billing.services import renewals

    counter = QueryCounter()
    connection.execute_wrappers.append(counter)
    connection_created.connect(counter.attach)
    issued = renewals.subscriptions_renew_due(batch_size=batch_size, workers=workers)
    connection_created.disconnect(counter.attach)
    connection.execute_wrappers.remove(counter)
    return {"issued": issued, "inside": counter.inside, "outside": counter.outside}


BENCH_QUEUE = "bench-renewals"


def celery_worker_start(processes: int) -> subprocess.Popen:
    """A Celery worker of ``processes`` processes for the renewal batches (queue ``BENCH_QUEUE``
    only: the card charges the batches queue are left for the benchmark to make afterwards)."""
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "celaest",
            "worker",
            "-Q",
            BENCH_QUEUE,
            "-n",
            f"{BENCH_QUEUE}@%h",
            "--concurrency",
            str(processes),
            "-l",
            "warning",
            "--without-gossip",
            "--without-mingle",
        ],  # fmt: skip
        cwd=ROOT,
        env=os.environ,
    )
    time.sleep(10)  # its processes load Django and connect to the broker
    return worker


def renew_through_celery(*, batch_size: int) -> dict:
    """The beat job as production runs it: ``billing.renew_subscriptions`` sends a message per
    batch and the worker's processes renew them side by side. Done when nothing is due and the
    worker is idle."""
    import redis
    from django.utils import timezone

    from billing.models import Subscription
    from billing.services import renewals
    from celaest.celery import app as celery_app

    celery_app.conf.task_routes = {"billing.renew_subscription_batch": {"queue": BENCH_QUEUE}}
    batches = renewals.subscriptions_renew_dispatch(batch_size=batch_size)
    broker = redis.Redis.from_url(os.environ["REDIS_URL"])
    due = Subscription.objects.filter(status__in=renewals.RENEWING, current_period_end__lte=timezone.now())
    while due.exists() or broker.llen(BENCH_QUEUE) or any(celery_app.control.inspect().active().values()):
        time.sleep(0.2)
    from billing.models import Invoice

    issued = Invoice.objects.filter(billing_reason=Invoice.Reason.SUBSCRIPTION_CYCLE).count()
    return {"issued": issued, "inside": 0, "outside": 0, "batches": batches}


def run(
    *,
    count: int,
    batch_size: int,
    workers: int,
    processes: int,
    celery: int,
    sample_size: int,
    charges: int | None,
) -> int:
    _django()
    from django.conf import settings
    from django.db import connection
    from django.db.models import Count
    from django.utils import timezone

    from billing.models import Invoice, InvoiceLine, Subscription
    from billing.services import renewals
    from billing.services.subscription_invoices import grace_period
    from billing.tests.stripe_server import FakeStripe
    from celaest.celery import app as celery_app
    from licensing.models import License

    due = Subscription.objects.filter(status__in=renewals.RENEWING, current_period_end__lte=timezone.now())
    total = due.count()
    print(f"{total:,} subscriptions due; batches of {batch_size:,}")
    rng = random.Random(21)
    sample_ids = rng.sample(list(due.values_list("pk", flat=True)), min(sample_size, total))
    previews = {}
    started = time.perf_counter()
    for subscription in Subscription.objects.select_related(
        "organization", "plan", "pending_plan", "user", "gateway", "coupon", "license"
    ).filter(pk__in=sample_ids):
        previews[subscription.pk] = renewals.subscription_upcoming_invoice(subscription)[1]
    per_preview = (time.perf_counter() - started) / max(len(previews), 1)

    worker = celery_worker_start(celery) if celery else None
    groups = (*PG_GROUPS, f"{BENCH_QUEUE}@", "self")
    load_before = os.getloadavg()
    cpu_before = cpu_by_group(groups)
    started = time.perf_counter()
    if worker is not None:
        try:
            runs = [renew_through_celery(batch_size=batch_size)]
        finally:
            worker.terminate()
            worker.wait(timeout=30)
    elif processes == 1:
        runs = [renew(batch_size=batch_size, workers=workers)]
    else:  # runs at once, in processes of their own: SKIP LOCKED splits the batches between them
        command = [sys.executable, __file__, "--phase", "renew", "--batch-size", str(batch_size)]
        children = [
            subprocess.Popen([*command, "--workers", str(workers)], stdout=subprocess.PIPE, text=True)
            for _ in range(processes)
        ]
        runs = [json.loads(child.communicate()[0].strip().splitlines()[-1]) for child in children]
    elapsed = time.perf_counter() - started
    cpu_after = cpu_by_group(groups)
    issued = sum(one["issued"] for one in runs)
    inside, outside = sum(one["inside"] for one in runs), sum(one["outside"] for one in runs)
    cpu = sum(cpu_after[group] - cpu_before[group] for group in ("self", f"{BENCH_QUEUE}@"))
    pg_cpu = sum(cpu_after[group] - cpu_before[group] for group in PG_GROUPS)
    load_after = os.getloadavg()
    batches = -(-total // batch_size)
    how = (
        f"the beat job's {runs[0]['batches']} batches on a Celery worker of {celery} processes"
        if celery
        else f"{processes} run(s) at once, {workers} thread(s) each; issued {[one['issued'] for one in runs]}"
    )
    print(f"renewed {issued:,} in {elapsed:.1f} s: {issued / elapsed:,.0f} renewals/s ({how})")
    print(f"  CPU: Python {cpu:.1f} s, PostgreSQL {pg_cpu:.1f} s")
    if not celery:  # a worker's statements are not counted
        print(
            f"  queries: {inside:,} in transactions ({inside / batches:.1f} a batch of {batch_size:,}), "
            f"{outside:,} outside (the due lists, the transfers' attempts, the queued charges, batches found taken)"
        )
    print(f"  load average before: {load_before[0]:.2f} {load_before[1]:.2f}; after: {load_after[0]:.2f}")
    print(f"  the per-subscription preview took {per_preview * 1000:.1f} ms a subscription")

    # The card charges the run queued, made as the workers would (billing.collect_invoice), here
    # on CHARGE_THREADS threads against the local Stripe server; the broker's copies are dropped.
    celery_app.control.purge()
    queued = list(
        Invoice.objects.filter(
            status=Invoice.Status.ISSUED, collection_attempts=0, next_collection_at__isnull=False
        ).values_list("pk", flat=True)[:charges]
    )
    stripe_key = "sk_test_local_celaest"  # noqa: S105 - the local server's key
    with FakeStripe(stripe_key) as stripe_api:
        settings.STRIPE_API_KEY, settings.STRIPE_API_BASE = stripe_key, stripe_api.url

        def charge(invoice_id):
            try:
                return renewals.invoice_collect(invoice_id=invoice_id)
            finally:
                connection.close()

        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=CHARGE_THREADS) as pool:
            charged = Counter(pool.map(charge, queued))
        charging = time.perf_counter() - started
        intents = len(stripe_api.intents)
    print(
        f"card charges made after: {len(queued):,} queued ones, on {CHARGE_THREADS} threads in {charging:.1f} s "
        f"({charging * 1000 / max(len(queued), 1):.1f} ms each, {dict(charged)})"
    )

    failures = []
    renewal_invoices = Invoice.objects.filter(billing_reason=Invoice.Reason.SUBSCRIPTION_CYCLE)
    per_subscription = renewal_invoices.values("subscription").annotate(n=Count("id"))
    if renewal_invoices.count() != total or per_subscription.filter(n__gt=1).exists():
        failures.append(f"{renewal_invoices.count()} renewal invoices for {total} subscriptions")
    numbers = sorted(int(number[-6:]) for number in Invoice.objects.values_list("invoice_number", flat=True))
    if numbers != list(range(numbers[0], numbers[0] + len(numbers))):
        failures.append("invoice numbers are not gapless")
    if Subscription.objects.filter(status__in=renewals.RENEWING, current_period_end__lte=timezone.now()).exists():
        failures.append("subscriptions still due")
    if Subscription.objects.filter(status=Subscription.Status.TRIALING).exists():
        failures.append("trials not converted")
    grace = grace_period()
    short = 0
    for invoice in (
        renewal_invoices.filter(status=Invoice.Status.ISSUED)
        .select_related("subscription__license")
        .iterator(chunk_size=5000)
    ):
        license = invoice.subscription.license
        if license.status != License.Status.ACTIVE or license.expires_at < invoice.due_at + grace:
            short += 1
    if short:
        failures.append(f"{short} licenses not kept valid through due date + grace")
    mismatched = 0
    for invoice in renewal_invoices.filter(subscription_id__in=sample_ids).prefetch_related("lines"):
        draft = previews[invoice.subscription_id]
        lines = [(line.kind, line.description, line.amount) for line in invoice.lines.all()]
        expected = [(line.kind, line.description[:255], line.amount) for line in draft.lines]
        if (invoice.subtotal, invoice.discount_total, invoice.tax_total, invoice.total) != (
            draft.amounts.subtotal,
            draft.amounts.discount,
            draft.amounts.tax,
            draft.amounts.total,
        ) or lines != expected:
            mismatched += 1
    if mismatched:
        failures.append(f"{mismatched} of {len(previews)} sampled invoices differ from their preview")
    overage = InvoiceLine.objects.filter(kind=InvoiceLine.Kind.OVERAGE).values("invoice").distinct().count()
    discounted = renewal_invoices.filter(coupon__isnull=False).count()
    outcomes = dict(renewal_invoices.values_list("status").annotate(n=Count("id")).order_by())
    attempted = renewal_invoices.filter(collection_attempts=1).count()
    print(f"invoices: {renewal_invoices.count():,} ({overage:,} with overage lines, {discounted:,} discounted), "
          f"numbers {numbers[0]}..{numbers[-1]}; by status {outcomes}; {attempted:,} with their first attempt made; "
          f"{intents:,} card charges")  # fmt: skip
    print(f"sample: {len(previews)} invoices equal to their per-subscription preview" if not mismatched else "")
    for failure in failures:
        print("FAILED:", failure)
    return 1 if failures else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=1, help="threads renewing batches side by side")
    parser.add_argument("--processes", type=int, default=1, help="renewal runs at once, each in its own process")
    parser.add_argument(
        "--celery", type=int, default=0, help="renew as the beat job does: batches on a Celery worker of N processes"
    )
    parser.add_argument("--sample", type=int, default=500)
    parser.add_argument("--charges", type=int, default=None, help="make only this many of the queued card charges")
    parser.add_argument("--reseed", action="store_true", help="seed the template database again")
    parser.add_argument("--phase", choices=["all", "seed", "renew"], default="all", help=argparse.SUPPRESS)
    args = parser.parse_args()
    for key, value in ENV.items():
        os.environ.setdefault(key, value)
    if args.phase == "seed":  # in the template's database (prepare sets DATABASE_URL)
        _django()
        from seed import boundary_now, seed

        seed(count=args.count, boundary=boundary_now())
        return 0
    if args.phase == "renew":  # one of --processes runs (DATABASE_URL set by the parent)
        _django()
        print(json.dumps(renew(batch_size=args.batch_size, workers=args.workers)))
        return 0
    database_url = os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)
    prepare(database_url, args.count, args.reseed)
    os.environ["DATABASE_URL"] = database_url
    return run(
        count=args.count,
        batch_size=args.batch_size,
        workers=args.workers,
        processes=args.processes,
        celery=args.celery,
        sample_size=args.sample,
        charges=args.charges,
    )


if __name__ == "__main__":
    sys.exit(main())
