"""The records of AI gateway calls, written behind the answer with their counts.

A gateway call's task is not written to PostgreSQL while the client waits. Its row travels as a
record with the call's count through the usage meter's journal (``licensing.meter``):

- at the count, the new row, running (``call_task_begin``);
- at the end, what changed (``call_task_answer``, ``call_task_failure``,
  ``call_task_disconnected``), with the tokens it adds or the request it gives back.

The meter's flush (the beat job, every second) writes a batch of records in the transaction that
applies its counts, exactly once (``task_records_apply``). A call that began and ended within one
flush is one ``INSERT`` of its final row; one that spans flushes is inserted running and updated
at its end, only while it is still running. A process that dies mid-call leaves its running row,
which the stale-task job closes (``worker_lost``) and whose request it gives back, as for any
task. Each end carries its ``task.completed``/``task.failed`` event, emitted when the end is
written. Without Redis, or when the meter writes through (the test suite), a record is written
at once in the count's transaction: the row exists when the answer leaves.

The task's row is therefore visible through the API up to a flush interval after its answer.
"""

import json
import logging
import uuid
from collections import defaultdict
from datetime import datetime
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import JSONField, Model

from aimesh.models import AIApiKey, AIModel, Prompt
from celaest.bulk import rows_update
from celaest.readcache import generations_read_at_once
from identity.models import Organization, User
from licensing.models import License
from licensing.usage import (
    MonthUsage,
    license_usage_record,
    license_usage_release,
    license_usage_reserve,
)
from settings_app.events import emit_event

from .models import ProcessedTask, TaskBatch
from .services import answer_fields, disconnected_fields, failure_fields, task_event_payload, task_usage_commit

logger = logging.getLogger(__name__)

#: a row's columns, by attribute name (``model_id``), as a record carries them
_COLUMNS = {field.attname: field for field in ProcessedTask._meta.concrete_fields if not field.generated}
_JSON_COLUMNS = {name for name, field in _COLUMNS.items() if isinstance(field, JSONField)}
#: references a record may hold to a row deleted since: nullable ones are emptied, the others drop
#: the record (logged), so that no record can stop the meter's flush
_NULLABLE = {"user_id": User._base_manager, "api_key_id": AIApiKey._base_manager, "prompt_id": Prompt._base_manager}
_REQUIRED = {
    "organization_id": Organization._base_manager,
    "license_id": License._base_manager,
    "model_id": AIModel._base_manager,
    "batch_id": TaskBatch._base_manager,
}


def _json(value):
    if isinstance(value, Model):
        return str(value.pk)
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _record(task: ProcessedTask, fields: dict, *, new: bool = False, event: str | None = None) -> dict:
    """``fields`` of ``task`` (names or attribute names) as the journal carries them (JSON)."""
    columns = {ProcessedTask._meta.get_field(name).attname: _json(value) for name, value in fields.items()}
    record = {"id": str(task.pk), "fields": columns, "new": new}
    if event:
        record["event"] = [event, str(task.organization_id), task_event_payload(task)]
    return record


def call_task_begin(*, task: ProcessedTask) -> MonthUsage | None:
    """Count the call of ``task`` (built, not saved: running, with the license
    ``operations.ai_licenses.paying_license`` found live this request) against its license or
    refuse it (429), its running row recorded with the count. Returns the license's month as
    counted (``licensing.usage.license_usage_reserve``)."""
    row = {name: getattr(task, name) for name in _COLUMNS}
    record = _record(task, row, new=True)
    return license_usage_reserve(license=task.license, task_id=task.pk, record=record, live_checked=True)


@transaction.atomic
def _end(task: ProcessedTask, fields: dict, *, event: str, release: bool = False) -> ProcessedTask:
    """Record the end of ``task``'s call (``fields``) with the count it changes, if any."""
    for name, value in fields.items():
        setattr(task, name, value)
    record = _record(task, fields, event=event)
    period_start = task.created_at.date()
    if release:
        license_usage_release(license=task.license, task_id=task.pk, period_start=period_start, record=record)
    elif task.tokens_input or task.tokens_output:
        task_usage_commit(task, record)
    else:
        license_usage_record(record)
    return task


def call_task_answer(*, task: ProcessedTask, started, **answer) -> ProcessedTask:
    """Record an answered call (``answer``: ``operations.services.answer_fields``' arguments)."""
    return _end(task, answer_fields(started=started, **answer), event="task.completed")


def call_task_failure(
    *, task: ProcessedTask, error, started, release_license: bool, attempts: int | None = None
) -> ProcessedTask:
    """Record a failed call; ``release_license`` gives its request back (no provider answered)."""
    fields = failure_fields(error=error, started=started, attempts=attempts)
    return _end(task, fields, event="task.failed", release=release_license)


def call_task_disconnected(*, task: ProcessedTask, state, error, started) -> ProcessedTask:
    """Record a streamed call whose client went away: failed, with what was produced."""
    fields = {**disconnected_fields(task=task, state=state), **failure_fields(error=error, started=started)}
    return _end(task, fields, event="task.failed")


# -- writing ---------------------------------------------------------------------------------------


def _references_keep(rows: dict[str, dict]) -> None:
    """Empty the nullable references to rows deleted since the call, and drop (logged) the rows
    whose required references are gone."""
    for name, manager in (*_NULLABLE.items(), *_REQUIRED.items()):
        wanted = {row[name] for row in rows.values() if row.get(name) is not None}
        if not wanted:
            continue
        gone = wanted - {str(pk) for pk in manager.filter(pk__in=wanted).values_list("pk", flat=True)}
        for task_id, row in [(task_id, row) for task_id, row in rows.items() if row.get(name) in gone]:
            if name in _NULLABLE:
                row[name] = None
            else:
                logger.warning("Record of task %s dropped: its %s %s no longer exists", task_id, name, row[name])
                del rows[task_id]


def task_records_apply(records: list[dict]) -> None:
    """Write gateway calls' records (in the order they were made) in the caller's transaction:
    the rows begun here inserted in their final state, the others updated while still running,
    and each written end's event emitted."""
    merged: dict[str, dict] = {}
    new: set[str] = set()
    events: dict[str, list] = defaultdict(list)
    for record in records:
        merged.setdefault(record["id"], {}).update(record["fields"])
        if record.get("new"):
            new.add(record["id"])
        if record.get("event"):
            events[record["id"]].append(record["event"])
    # Values stay as the JSON holds them (ids and times as strings): each field's database
    # preparation converts them, once.
    rows = {task_id: {"id": task_id, **columns} for task_id, columns in merged.items()}
    _references_keep(rows)
    # The ends of rows written by an earlier flush, grouped by the columns they change.
    ends: dict[tuple, list[dict]] = defaultdict(list)
    for task_id, row in rows.items():
        if task_id not in new:
            ends[tuple(sorted(set(row) - {"id"}))].append(row)
    begun = [row for task_id, row in rows.items() if task_id in new]
    write = _rows_copy if connection.vendor == "postgresql" else _rows_save
    written = write(begun, list(ends.items()))
    with generations_read_at_once():  # the webhooks' copies checked once for the whole batch
        for task_id in written:
            for event_type, organization_id, payload in events.get(task_id, ()):
                emit_event(event_type, organization=organization_id, payload=payload)


def _rows_save(begun: list[dict], ends: list[tuple[tuple, list[dict]]]) -> set[str]:
    """Any database: the begun rows inserted, the others updated if still running (locked).
    Returns the ids written."""
    tasks = [ProcessedTask(**row) for row in begun]
    ProcessedTask.objects.bulk_create(tasks, ignore_conflicts=True)
    written = {str(task.pk) for task in tasks}
    ended = [row["id"] for _, group in ends for row in group]
    running = ProcessedTask.objects.select_for_update().filter(pk__in=ended, status=ProcessedTask.Status.RUNNING)
    still = {str(pk) for pk in running.values_list("pk", flat=True)} if ended else set()
    for columns, group in ends:
        tasks = [ProcessedTask(**row) for row in group if row["id"] in still]
        rows_update(ProcessedTask, tasks, tuple(_COLUMNS[name].name for name in columns))
    return written | still


def _copy_value(name: str, value):
    """A record's value as COPY's text takes it (ids, times and amounts are strings already)."""
    if name in _JSON_COLUMNS and value is not None:
        return json.dumps(value)
    return value


def _rows_copy(begun: list[dict], ends: list[tuple[tuple, list[dict]]]) -> set[str]:
    """PostgreSQL: every record COPYed into a temporary table, then one INSERT of the begun rows
    and one UPDATE per group of ends (only of rows still running): a fixed number of statements
    whatever the batch's size. A statement of one placeholder per value (Django's bulk_create)
    spent most of its time in the driver parsing the statement itself. Returns the ids written."""
    table, names = ProcessedTask._meta.db_table, list(_COLUMNS)
    columns = ", ".join(field.column for field in _COLUMNS.values())
    written: set[str] = set()
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMPORARY TABLE IF NOT EXISTS task_records ON COMMIT DELETE ROWS AS "  # noqa: S608 - constant names
            f"SELECT {columns}, 0 AS record_group FROM {table} WITH NO DATA"
        )
        cursor.execute("TRUNCATE task_records")  # a batch earlier in the same transaction
        # The driver's own cursor: its errors are Django's only through wrap_database_errors.
        with (
            connection.wrap_database_errors,
            cursor.cursor.copy(f"COPY task_records ({columns}, record_group) FROM STDIN") as copy,
        ):
            for group, rows in enumerate([begun, *(rows for _, rows in ends)]):
                for row in rows:
                    copy.write_row([*(_copy_value(name, row.get(name)) for name in names), group])
        if begun:
            cursor.execute(
                f"INSERT INTO {table} ({columns}) SELECT {columns} FROM task_records "  # noqa: S608
                "WHERE record_group = 0 ON CONFLICT (id) DO NOTHING RETURNING id"
            )
            written.update(str(task_id) for (task_id,) in cursor.fetchall())
        for group, (changed, _) in enumerate(ends, start=1):
            sets = ", ".join(f"{_COLUMNS[name].column} = e.{_COLUMNS[name].column}" for name in changed)
            cursor.execute(
                f"UPDATE {table} AS t SET {sets} FROM task_records AS e "  # noqa: S608 - constant names
                "WHERE e.record_group = %s AND t.id = e.id AND t.status = %s RETURNING t.id",
                [group, ProcessedTask.Status.RUNNING],
            )
            written.update(str(task_id) for (task_id,) in cursor.fetchall())
    return written


class TaskRecords:
    """The observer ``licensing.meter.METER_RECORDS`` calls with the records of a batch."""

    def records_apply(self, records: list[dict]) -> None:
        task_records_apply(records)


TASK_RECORDS = TaskRecords()
