"""Daily counts of validation attempts (``license_validation_daily``): per license, day (UTC) and
result code, recomputed from the log for a day at a time, so a rerun is harmless. The beat job
counts today and yesterday every hour, well within the log's retention; reports that span years
read these rows instead of hundreds of millions of attempts. Unknown keys (no license) are not
counted: they belong to no organization."""

from datetime import UTC, date, datetime, time, timedelta

from django.db import transaction
from django.db.models import Count

from .models import LicenseValidation, LicenseValidationDaily


@transaction.atomic
def validation_days_rollup(*, day: date) -> int:
    """(Re)count ``day``'s attempts; return how many daily rows were written."""
    start = datetime.combine(day, time.min, UTC)
    counts = (
        LicenseValidation.objects.filter(created_at__gte=start, created_at__lt=start + timedelta(days=1))
        .exclude(license_id=None)
        .exclude(organization_id=None)
        .values("license_id", "organization_id", "result_code")
        .annotate(attempts=Count("id"))
        .order_by()
    )
    rows = [
        LicenseValidationDaily(
            license_id=row["license_id"],
            organization_id=row["organization_id"],
            day=day,
            result_code=row["result_code"],
            attempts=row["attempts"],
        )
        for row in counts
    ]
    LicenseValidationDaily.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["license", "day", "result_code"],
        update_fields=["attempts", "organization", "updated_at"],
        batch_size=1000,
    )
    return len(rows)


def validation_days_rollup_recent(*, now: datetime) -> int:
    """The beat job: today so far and yesterday (closed after midnight)."""
    today = now.astimezone(UTC).date()
    return validation_days_rollup(day=today - timedelta(days=1)) + validation_days_rollup(day=today)
