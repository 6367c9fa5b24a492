"""license_validations on PostgreSQL: partitioned by month, with the ERD's indexes on every
partition, months made ahead by the beat job, whole months dropped by retention, and rows outside
every month kept by the default partition."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.conf import settings
from django.db import connection
from django.utils import timezone

from ipcontrol.buffer import validation_buffer_flush, validation_rows_record
from ipcontrol.models import LicenseValidation
from ipcontrol.partitions import (
    DEFAULT_PARTITION,
    partition_name,
    validation_partitions,
    validation_partitions_prepare,
    validations_partitioned,
)
from ipcontrol.services import validations_purge
from tests import factories as f

pytestmark = pytest.mark.django_db


def _partition_of(row_id) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text FROM license_validations WHERE id = %s", [row_id])
        return cursor.fetchone()[0]


def _indexes(table: str) -> set[tuple[str, ...]]:
    constraints = connection.introspection.get_constraints(connection.cursor(), table)
    return {tuple(c["columns"]) for c in constraints.values() if c["index"] or c["unique"]}


def test_the_log_is_partitioned_with_its_indexes_on_every_partition():
    assert validations_partitioned()
    names = validation_partitions()
    this_month = partition_name(timezone.now().date())
    assert this_month in names and names[-1] == DEFAULT_PARTITION
    for table in ("license_validations", this_month):
        indexes = _indexes(table)
        assert {("license_id", "created_at"), ("organization_id", "created_at"), ("created_at",)} <= indexes, table
        assert ("id", "created_at") in indexes  # the key holds the partition key
    foreign_keys = connection.introspection.get_relations(connection.cursor(), "license_validations")
    assert {"license_id", "organization_id", "ip_binding_id"} <= set(foreign_keys)


def test_flushed_rows_land_in_their_month_and_stray_times_in_the_default_partition():
    license = f.LicenseFactory()
    now = timezone.now()
    far = datetime(2099, 1, 1, tzinfo=UTC)
    rows = [
        {"id": str(uuid.uuid4()), "license_id": str(license.pk), "organization_id": str(license.organization_id),
         "ip_binding_id": None, "ip_address": None, "machine_id": "m", "hostname": "", "is_valid": True,
         "result_code": "VALID", "failure_reason": "", "created_at": moment.isoformat()}
        for moment in (now, far)
    ]  # fmt: skip
    validation_rows_record(rows)
    validation_buffer_flush()
    assert _partition_of(rows[0]["id"]) == partition_name(now.date())
    assert _partition_of(rows[1]["id"]) == DEFAULT_PARTITION
    # Replayed (a flush that died after commit): nothing twice.
    validation_rows_record(rows)
    validation_buffer_flush()
    assert LicenseValidation.objects.count() == 2


def test_the_beat_job_makes_the_months_ahead_once():
    later = timezone.now() + timedelta(days=200)
    created = validation_partitions_prepare(now=later, months_ahead=2)
    assert partition_name(later.date()) in created and len(created) == 3
    assert validation_partitions_prepare(now=later, months_ahead=2) == []
    entry = settings.CELERY_BEAT_SCHEDULE["prepare-license-validation-partitions"]
    assert entry["task"] == "ipcontrol.prepare_validation_partitions"


def test_retention_drops_whole_months_and_deletes_the_rest_row_by_row():
    license = f.LicenseFactory()
    start = timezone.now()
    validation_partitions_prepare(now=start, months_ahead=14)
    months = [start + timedelta(days=31 * n) for n in range(14)]
    for moment in months:
        f.LicenseValidationFactory(license=license, created_at=moment)
    # 400 days after the third month's row: the first months are past retention as a whole.
    with time_machine.travel(months[2] + timedelta(days=400, seconds=1), tick=False):
        cutoff = timezone.now() - timedelta(days=400)
        deleted = validations_purge()
    names = validation_partitions()
    gone = [moment for moment in months if partition_name(moment.date()) not in names]
    assert gone and all(moment < cutoff for moment in gone)
    assert partition_name(months[4].date()) in names
    # Every row before the cutoff is gone (whole months or one by one), every later one kept.
    assert not LicenseValidation.objects.filter(created_at__lt=cutoff).exists()
    assert LicenseValidation.objects.count() == sum(1 for moment in months if moment >= cutoff)
    assert deleted == 3 - len(gone)
