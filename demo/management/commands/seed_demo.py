"""``manage.py seed_demo``: load the demo data (and optional benchmark volume) into every table."""

import argparse
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, DjangoHelpFormatter

from demo.loaders.base import (
    ADMIN_PASSWORD_ENV,
    CREDENTIALS_FILENAME,
    OWNER_PASSWORD_ENV,
    DemoSeedError,
    default_credentials_path,
)
from demo.loaders.bench import (
    BENCH_LICENSES_PER_ORG,
    BENCH_ORGS_PER_SCALE,
    BENCH_TASKS_PER_ORG,
    BENCH_TELEMETRY_PER_ORG,
    BENCH_VALIDATIONS_PER_LICENSE,
)
from demo.seed import demo_seed


class _HelpFormatter(DjangoHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Django's formatter, keeping the line breaks of the description."""


_LICENSES_PER_SCALE = BENCH_ORGS_PER_SCALE * BENCH_LICENSES_PER_ORG
_TASKS_PER_SCALE = BENCH_ORGS_PER_SCALE * BENCH_TASKS_PER_ORG
_VALIDATIONS_PER_SCALE = _LICENSES_PER_SCALE * BENCH_VALIDATIONS_PER_LICENSE
_TELEMETRY_PER_SCALE = BENCH_ORGS_PER_SCALE * BENCH_TELEMETRY_PER_ORG


class Command(BaseCommand):
    help = f"""Load CELAEST demo data: rows in all 36 tables, safe to run again.

Creates the staff superuser admin@celaest.local, the customer organization "demo"
(owner owner@demo.celaest.local, plus an admin, a member and a viewer), a second
organization "acme" with its own users and data, plans, licenses, AI models and
provider keys, prompts, tasks, ROI, catalogue, orders, invoices, webhooks, ...

Running it again adds nothing: rows are found by natural key or a fixed id, and
derived rows (daily ROI, license usage per month, rating and usage counters) are
recomputed from the tasks, reviews and downloads.

Logins: the two printed at the end always work. Their passwords come from
{ADMIN_PASSWORD_ENV} / {OWNER_PASSWORD_ENV} when set; otherwise they are generated on
the first run and kept in VAR_DIR/{CREDENTIALS_FILENAME} (mode 0600), and each
run resets the two users to them. Other demo users cannot log in (no password).

Benchmarks: --scale N adds N times {BENCH_ORGS_PER_SCALE} organizations (slugs bench-0001, ...),
{_LICENSES_PER_SCALE:,} licenses, {_TASKS_PER_SCALE:,} processed tasks, {_VALIDATIONS_PER_SCALE:,} license validations,
{_TELEMETRY_PER_SCALE:,} telemetry events and proportional audit, webhook and billing rows.
"""

    def create_parser(self, prog_name, subcommand, **kwargs):
        kwargs.setdefault("formatter_class", _HelpFormatter)
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser):
        parser.add_argument(
            "--scale",
            type=int,
            default=0,
            metavar="N",
            help="Benchmark volume to add on top of the base demo (default 0: the base demo only).",
        )
        parser.add_argument(
            "--credentials-file",
            "--password-file",
            dest="credentials_file",
            type=Path,
            default=None,
            metavar="PATH",
            help=f"Where generated passwords are kept (default: VAR_DIR/{CREDENTIALS_FILENAME}).",
        )

    def handle(self, *args, scale: int, credentials_file: Path | None, verbosity: int, **options):
        if scale < 0:
            raise CommandError("--scale must be 0 or more.")
        path = credentials_file or default_credentials_path()
        started = time.monotonic()
        if verbosity >= 1:
            self.stdout.write(f"Seeding demo data (scale {scale})...")
        try:
            credentials = demo_seed(scale=scale, credentials_path=path, stdout=self.stdout if verbosity >= 1 else None)
        except DemoSeedError as exc:
            raise CommandError(str(exc)) from exc
        if verbosity >= 1:
            self.stdout.write(self.style.SUCCESS(f"Demo data ready in {time.monotonic() - started:.1f}s."))
        self.stdout.write(f"Staff admin:  {credentials.admin.email} / {credentials.admin.password}")
        self.stdout.write(f"Demo owner:   {credentials.owner.email} / {credentials.owner.password}")
