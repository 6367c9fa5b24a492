"""``license_validations`` partitioned by month on PostgreSQL.

At 2,000 validations a second the table gains 170 million rows a day. On PostgreSQL it is a
declarative partitioned table (``PARTITION BY RANGE (created_at)``, migration 0005): one partition
a month (``license_validations_pYYYYMM``), created ahead by a beat job, plus a default partition
that catches a row outside every month made (so a late job never loses an attempt). Retention
drops a month whose every row is past it as a whole (no row-by-row delete, no bloat); the rows
left before the cutoff, in the month that straddles it or in the default partition, are deleted
in batches (``ipcontrol.services.validations_purge``).

The primary key is ``(id, created_at)`` there (a partitioned table's unique keys hold its
partition key); ids are UUIDs, so ``id`` alone stays unique in practice and Django keeps knowing
it as the key. The indexes (license, organization, created_at) are the partitioned table's, so
every partition has them; readers (collision detection, the API, reports) query the parent as
before. SQLite keeps the plain table: every function here does nothing there.
"""

import logging
import re
from datetime import UTC, date, datetime

from django.db import connection, transaction

from .models import LicenseValidation

logger = logging.getLogger(__name__)

TABLE = LicenseValidation._meta.db_table
DEFAULT_PARTITION = f"{TABLE}_default"
#: months created ahead of the current one
MONTHS_AHEAD = 3
_MONTHLY = re.compile(rf"^{TABLE}_p(\d{{4}})(\d{{2}})$")


def _month_start(moment: datetime | date) -> date:
    return date(moment.year, moment.month, 1)


def _next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def partition_name(month: date) -> str:
    return f"{TABLE}_p{month.year:04d}{month.month:02d}"


def validations_partitioned() -> bool:
    """Whether ``license_validations`` is a partitioned table (PostgreSQL after migration 0005)."""
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_partitioned_table WHERE partrelid = to_regclass(%s)", [TABLE])
        return cursor.fetchone() is not None


def validation_partitions() -> list[str]:
    """The partitions' names, oldest month first (the default one last)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = to_regclass(%s) ORDER BY c.relname",
            [TABLE],
        )
        names = [name for (name,) in cursor.fetchall()]
    return sorted(names, key=lambda name: (name == DEFAULT_PARTITION, name))


def partitions_create(cursor, first: date, last: date) -> list[str]:
    """Create the monthly partitions from ``first`` to ``last`` (months) that do not exist yet;
    return their names. (Also used by migration 0005, with its own cursor.)"""
    created = []
    month = _month_start(first)
    while month <= last:
        name = partition_name(month)
        cursor.execute("SELECT to_regclass(%s)", [name])
        if cursor.fetchone()[0] is None:
            start, end = (
                datetime.combine(month, datetime.min.time(), UTC),
                datetime.combine(_next_month(month), datetime.min.time(), UTC),
            )
            cursor.execute(f'CREATE TABLE "{name}" PARTITION OF "{TABLE}" FOR VALUES FROM (%s) TO (%s)', [start, end])
            created.append(name)
        month = _next_month(month)
    return created


def validation_partitions_prepare(*, now: datetime, months_ahead: int = MONTHS_AHEAD) -> list[str]:
    """The beat job: make sure this month's and the next ``months_ahead`` months' partitions
    exist. Returns the names created (none on SQLite or an unpartitioned table)."""
    if not validations_partitioned():
        return []
    last = _month_start(now)
    for _ in range(months_ahead):
        last = _next_month(last)
    with transaction.atomic(), connection.cursor() as cursor:
        return partitions_create(cursor, _month_start(now), last)


def validation_partitions_drop_expired(*, cutoff: datetime) -> list[str]:
    """Drop the monthly partitions whose whole month is before ``cutoff``; return their names."""
    if not validations_partitioned():
        return []
    dropped = []
    for name in validation_partitions():
        match = _MONTHLY.match(name)
        if match is None:
            continue
        month = date(int(match[1]), int(match[2]), 1)
        if datetime.combine(_next_month(month), datetime.min.time(), UTC) > cutoff:
            break  # in month order: every later one is newer
        with transaction.atomic(), connection.cursor() as cursor:
            # Rows written earlier in the caller's transaction (deferred key checks) block a drop.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(f'ALTER TABLE "{TABLE}" DETACH PARTITION "{name}"')
            cursor.execute(f'DROP TABLE "{name}"')
        dropped.append(name)
    return dropped
