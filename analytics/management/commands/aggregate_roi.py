"""Recompute ROI metrics for a date range (idempotent)."""

from datetime import date

from django.core.management.base import BaseCommand, CommandError

from analytics.services import PERIOD_TYPES, roi_aggregate


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"{value!r} is not a date: use YYYY-MM-DD.") from exc


class Command(BaseCommand):
    help = (
        "Aggregate processed tasks into roi_metrics for every organization. Whole periods that cover "
        "--from..--to are recomputed, so running it again changes nothing. "
        "Example: manage.py aggregate_roi --period all --from 2026-11-01 --to 2026-11-30"
    )

    def add_arguments(self, parser):
        parser.add_argument("--period", choices=[*PERIOD_TYPES, "all"], default="all", help="Default: all.")
        parser.add_argument("--from", dest="date_from", required=True, help="First day, YYYY-MM-DD.")
        parser.add_argument("--to", dest="date_to", required=True, help="Last day, YYYY-MM-DD.")

    def handle(self, *args, period, date_from, date_to, **options):
        start, end = _date(date_from), _date(date_to)
        if end < start:
            raise CommandError("--to is before --from.")
        for period_type in PERIOD_TYPES if period == "all" else (period,):
            rows = roi_aggregate(period_type=period_type, date_from=start, date_to=end)
            self.stdout.write(f"{period_type}: {rows} rows written")
