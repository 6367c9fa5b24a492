"""On PostgreSQL, ``license_validations`` becomes a table partitioned by month of ``created_at``
(see ``ipcontrol.partitions``): its rows are copied into the new table, whose primary key is
``(id, created_at)``, with the same foreign keys and indexes under the same names. SQLite keeps
the plain table.

The copy rewrites the whole log once: on a large installation run it in a maintenance window
(or after trimming the log with the retention job)."""

from datetime import UTC, datetime

from django.db import migrations

TABLE = "license_validations"
OLD = "license_validations_unpartitioned"
MONTHS_AHEAD = 3


def _next_month(month):
    return month.replace(year=month.year + month.month // 12, month=month.month % 12 + 1, day=1)


def partition(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_partitioned_table WHERE partrelid = to_regclass(%s)", [TABLE])
        if cursor.fetchone():
            return
        # What to make again on the new table, under the same names.
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = to_regclass(%s) AND contype = 'f' ORDER BY conname",
            [TABLE],
        )
        foreign_keys = cursor.fetchall()
        cursor.execute(
            "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
            "WHERE x.indrelid = to_regclass(%s) AND NOT x.indisprimary ORDER BY i.relname",
            [TABLE],
        )
        indexes = cursor.fetchall()
        cursor.execute(f'SELECT min(created_at) FROM "{TABLE}"')  # noqa: S608 - a constant
        oldest = cursor.fetchone()[0]

        cursor.execute(f'ALTER TABLE "{TABLE}" RENAME TO "{OLD}"')
        cursor.execute(
            f'CREATE TABLE "{TABLE}" (LIKE "{OLD}" INCLUDING DEFAULTS INCLUDING CONSTRAINTS) '
            "PARTITION BY RANGE (created_at)"
        )
        now = datetime.now(UTC)
        month = (oldest or now).astimezone(UTC).date().replace(day=1)
        last = now.date().replace(day=1)
        for _ in range(MONTHS_AHEAD):
            last = _next_month(last)
        while month <= last:
            start = datetime(month.year, month.month, 1, tzinfo=UTC)
            end_month = _next_month(month)
            end = datetime(end_month.year, end_month.month, 1, tzinfo=UTC)
            cursor.execute(
                f'CREATE TABLE "{TABLE}_p{month.year:04d}{month.month:02d}" PARTITION OF "{TABLE}" '
                "FOR VALUES FROM (%s) TO (%s)",
                [start, end],
            )
            month = end_month
        cursor.execute(f'CREATE TABLE "{TABLE}_default" PARTITION OF "{TABLE}" DEFAULT')
        cursor.execute(f'INSERT INTO "{TABLE}" SELECT * FROM "{OLD}"')  # noqa: S608 - constants
        cursor.execute(f'DROP TABLE "{OLD}"')  # its key, keys and indexes free their names
        cursor.execute(f'ALTER TABLE "{TABLE}" ADD CONSTRAINT "{TABLE}_pkey" PRIMARY KEY (id, created_at)')
        for name, definition in foreign_keys:
            cursor.execute(f'ALTER TABLE "{TABLE}" ADD CONSTRAINT "{name}" {definition}')
        for _name, definition in indexes:  # read before the rename: they name the new table
            cursor.execute(definition)


class Migration(migrations.Migration):
    dependencies = [("ipcontrol", "0004_machine_policies")]

    operations = [migrations.RunPython(partition, migrations.RunPython.noop, elidable=False)]
