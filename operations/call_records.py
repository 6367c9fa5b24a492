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

import logging
import uuid
from collections import defaultdict
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import Model

from aimesh.models import AIApiKey, AIModel, Prompt
from celaest.bulk import rows_update
from celaest.readcache import generations_read_at_once
from identity.models import Organization, User
from licensing.models import License
from licensing.usage import (
    MonthUsage,
    license_usage_commit,
    license_usage_record,
    license_usage_release,
    license_usage_reserve,
)
from settings_app.events import emit_event

from .models import ProcessedTask, TaskBatch
from .services import answer_fields, disconnected_fields, failure_fields, task_event_payload

logger = logging.getLogger(__name__)

#: a row's columns, by attribute name (``model_id``), as a record carries them
_COLUMNS = {field.attname: field for field in ProcessedTask._meta.concrete_fields if not field.generated}
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
        license_usage_commit(
            license=task.license,
            tokens_input=task.tokens_input,
            tokens_output=task.tokens_output,
            tokens_cached=task.tokens_cached,
            cost=task.cost_usd,
            period_start=period_start,
            record=record,
        )
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
    begun = [ProcessedTask(**row) for task_id, row in rows.items() if task_id in new]
    ProcessedTask.objects.bulk_create(begun, ignore_conflicts=True)
    written = {str(task.pk) for task in begun}
    ended = [task_id for task_id in rows if task_id not in new]
    if ended:
        running = ProcessedTask.objects.select_for_update().filter(pk__in=ended, status=ProcessedTask.Status.RUNNING)
        still = {str(pk) for pk in running.values_list("pk", flat=True)}
        by_columns: dict[tuple, list] = defaultdict(list)
        for task_id in still:
            row = rows[task_id]
            by_columns[tuple(sorted(set(row) - {"id"}))].append(ProcessedTask(**row))
        for columns, tasks in by_columns.items():  # the rows are locked: a plain UPDATE of each
            rows_update(ProcessedTask, tasks, tuple(_COLUMNS[name].name for name in columns))
        written |= still
    with generations_read_at_once():  # the webhooks' copies checked once for the whole batch
        for task_id in written:
            for event_type, organization_id, payload in events.get(task_id, ()):
                emit_event(event_type, organization=organization_id, payload=payload)


class TaskRecords:
    """The observer ``licensing.meter.METER_RECORDS`` calls with the records of a batch."""

    def records_apply(self, records: list[dict]) -> None:
        task_records_apply(records)


TASK_RECORDS = TaskRecords()
