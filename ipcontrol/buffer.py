"""The write path of ``license_validations``: every attempt is recorded, without a database
insert on the request path.

A validation appends its row (JSON, with its own UUID) to a Redis list. A flush — the beat job
every two seconds, or sooner when the list reaches ``FLUSH_AT`` rows — takes the whole list over
with an atomic ``RENAME`` (new rows start a fresh list), bulk-inserts it, refreshes the bindings'
``last_seen``/IP (in ``LAST_SEEN_STEP`` steps), runs collision detection, and only then deletes
the taken-over list. A flush that dies leaves its list behind; a later flush adopts lists older
than ``ORPHAN_AFTER_SECONDS``. Inserting is idempotent (``ON CONFLICT DO NOTHING`` on the row's
id, with its time on the partitioned table of ``ipcontrol.partitions``), so a list replayed after a
crash between commit and delete adds nothing twice. Without Redis, or when it fails, the row is
written synchronously: nothing is lost either way.

No row can stop the flush: a row that cannot be decoded or written (a value the database
refuses, a field missing) is set apart by halving the batch that failed until the row stands
alone; it goes to the dead-letter list ``DEAD_LETTER_KEY`` (the newest ``DEAD_LETTER_KEEP``
kept, for inspection) with a system event, and every other row is written. Only a failure that
is not the rows' fault (the database or Redis unreachable) leaves the list for a later flush.

Orphans are looked for at most once every ``ORPHAN_SCAN_EVERY_SECONDS`` (by whichever flush
comes first): finding them scans the whole keyspace, which on a busy Redis (a snapshot, a
version, two rate-limit counters and two collision sets per license) costs more than flushing a
thousand rows, and a list only becomes an orphan after ``ORPHAN_AFTER_SECONDS`` anyway.
"""

import json
import logging
import time
import uuid
from datetime import datetime, timedelta
from functools import lru_cache

import redis
from django.conf import settings
from django.db import DataError, IntegrityError, connection, transaction
from django.db.models import Q

from audit.models import SystemEvent
from audit.services import system_event_record
from celaest.celery import app as celery_app
from celaest.db import uuid7
from celaest.redis import redis_client
from identity.models import Organization
from licensing.models import License

from .collisions import collision_candidates, collisions_detect
from .models import LicenseIpBinding, LicenseValidation

logger = logging.getLogger(__name__)

BUFFER_KEY = "ipcontrol:validations"
#: a binding's ``last_seen`` moves in steps of this much (or when its IP changes): a machine that
#: validates every few seconds would otherwise rewrite its row, and all its indexes, every flush.
#: Stale machines are found in hours (``ipcontrol.binding_stale_hours``).
LAST_SEEN_STEP = timedelta(minutes=1)
#: a heartbeat's row carries the lease it extends its machine's to (not a column of the table)
LEASE_FIELD = "lease_expires_at"
TAKEN_PREFIX = "ipcontrol:validations:taken:"
FLUSH_AT = 1000
ORPHAN_AFTER_SECONDS = 600  # well beyond the flush task's hard time limit
ORPHAN_SCAN_EVERY_SECONDS = 60
ORPHAN_SCAN_KEY = "ipcontrol:validations:orphan-scan"
INSERT_BATCH = 2000
DEAD_LETTER_KEY = "ipcontrol:validations:dead"
DEAD_LETTER_KEEP = 10_000
#: what a row can make a write raise (a value the database or the driver refuses, a missing or
#: mistyped field); anything else is the infrastructure's and leaves the list to a later flush
ROW_ERRORS = (DataError, IntegrityError, ValueError, TypeError, KeyError)
#: a flush of up to ``PACED_UP_TO`` rows inserts them ``PACED_SLICE`` at a time, pausing between
#: slices (see ``_rows_copy``); a larger backlog is written at full speed to catch up
PACED_SLICE = 250
PACED_UP_TO = 20 * FLUSH_AT

_FIELDS = (
    "id", "license_id", "organization_id", "ip_binding_id", "ip_address", "machine_id", "hostname", "is_valid",
    "result_code", "failure_reason", "created_at",
)  # fmt: skip


_redis = redis_client  # the shared REDIS_URL client (celaest.redis), made again when the setting changes


def validation_row(
    *,
    license: License | None,
    binding: LicenseIpBinding | None,
    ip_address: str | None,
    machine_id: str,
    hostname: str,
    is_valid: bool,
    result_code: str,
    failure_reason: str,
    created_at: datetime,
) -> dict:
    """One attempt as a JSON-ready row of ``license_validations``."""
    return {
        "id": str(uuid7()),  # time-ordered: appended to the primary key's index
        "license_id": str(license.pk) if license else None,
        "organization_id": str(license.organization_id) if license else None,
        "ip_binding_id": str(binding.pk) if binding else None,
        "ip_address": ip_address,
        "machine_id": machine_id[:255],
        "hostname": hostname[:255],
        "is_valid": is_valid,
        "result_code": result_code,
        "failure_reason": failure_reason[:255],
        "created_at": created_at.isoformat(),
    }


def validation_rows_record(rows: list[dict]) -> None:
    """Record attempts: into the Redis buffer, or straight into the database without Redis."""
    client = _redis()
    if client is not None:
        try:
            length = client.rpush(BUFFER_KEY, *[json.dumps(row) for row in rows])
        except redis.RedisError:
            logger.warning("validation buffer unavailable; writing %d row(s) synchronously", len(rows))
        else:
            validation_rows_pushed(length, len(rows))
            return
    validation_rows_store(rows)


def validation_buffer_shared() -> str | None:
    """The buffer's list key when the buffer lives in the Redis of the cache (so a script run
    there, such as the rate limits', may push rows to it), else None."""
    location = settings.CACHES["default"].get("LOCATION")
    return BUFFER_KEY if settings.REDIS_URL and location == settings.REDIS_URL else None


def validation_rows_pushed(length: int, count: int) -> None:
    """``count`` rows were pushed, leaving the list ``length`` long: the push that crosses a
    multiple of ``FLUSH_AT`` asks for a flush."""
    if length // FLUSH_AT > (length - count) // FLUSH_AT:
        _request_flush()


def _request_flush() -> None:
    """Ask a worker to flush now. Only the push that takes the list across a multiple of
    ``FLUSH_AT`` asks (``RPUSH`` answers each length once), so however busy, one request per
    ``FLUSH_AT`` rows pays for it. The task is named, not imported: ``ipcontrol.tasks`` imports
    this module."""
    try:
        celery_app.signature("ipcontrol.flush_validations").apply_async(expires=30)
    except Exception:  # the beat job flushes anyway; a full buffer must not fail a validation
        logger.exception("could not request a validation flush")


def validation_buffer_flush() -> int:
    """Move buffered rows into the database; return how many rows were processed."""
    client = _redis()
    if client is None:
        return 0
    taken = f"{TAKEN_PREFIX}{int(time.time())}:{uuid.uuid4().hex}"
    try:
        client.rename(BUFFER_KEY, taken)
    except redis.ResponseError:  # nothing buffered
        taken = None
    processed = _drain(client, taken) if taken else 0
    if client.set(ORPHAN_SCAN_KEY, 1, nx=True, ex=ORPHAN_SCAN_EVERY_SECONDS):
        processed += _orphans_adopt(client)
    return processed


def _orphans_adopt(client: redis.Redis) -> int:
    """Drain the lists of flushes that died (taken over more than ``ORPHAN_AFTER_SECONDS`` ago)."""
    processed = 0
    for orphan in client.scan_iter(match=f"{TAKEN_PREFIX}*", count=1000):
        orphan = orphan.decode()
        if _is_orphan(orphan):
            adopted = f"{TAKEN_PREFIX}{int(time.time())}:{uuid.uuid4().hex}"
            try:
                client.rename(orphan, adopted)  # only one flush can adopt it
            except redis.ResponseError:
                continue
            processed += _drain(client, adopted)
    return processed


def _is_orphan(key: str) -> bool:
    try:
        taken_at = int(key[len(TAKEN_PREFIX) :].split(":", 1)[0])
    except ValueError:
        return True
    return time.time() - taken_at > ORPHAN_AFTER_SECONDS


def _drain(client: redis.Redis, key: str) -> int:
    """Store every row of the list ``key`` (which this flush alone owns), set apart the ones that
    cannot be stored, then delete it."""
    raw = client.lrange(key, 0, -1)
    rows, dead = [], []
    for item in raw:
        try:
            rows.append((json.loads(item), item))
        except ValueError as exc:
            dead.append((item, exc))
    paced = len(rows) <= PACED_UP_TO
    for start in range(0, len(rows), INSERT_BATCH):
        dead.extend(_rows_store_isolating(rows[start : start + INSERT_BATCH], paced=paced))
    if dead:
        _dead_letter(client, dead)
    client.delete(key)
    return len(raw)


def _rows_store_isolating(rows: list[tuple[dict, bytes]], *, paced: bool) -> list[tuple[bytes, Exception]]:
    """Store ``(row, raw)`` pairs; when the rows make the write fail, store each half apart, down
    to the single rows at fault. Returns those, raw, with their error. One bad row among a
    thousand costs ~20 smaller writes; a clean batch, none."""
    try:
        validation_rows_store([row for row, _ in rows], paced=paced)
    except ROW_ERRORS as exc:
        if len(rows) == 1:
            return [(rows[0][1], exc)]
        middle = len(rows) // 2
        return _rows_store_isolating(rows[:middle], paced=False) + _rows_store_isolating(rows[middle:], paced=False)
    return []


def _dead_letter(client: redis.Redis, dead: list[tuple[bytes, Exception]]) -> None:
    """Keep rows that could not be stored where staff can look at them, and say so once."""
    client.rpush(DEAD_LETTER_KEY, *[item for item, _ in dead])
    client.ltrim(DEAD_LETTER_KEY, -DEAD_LETTER_KEEP, -1)
    # Only the errors' kinds: their text may quote the very value the database refused.
    errors = sorted({type(exc).__name__ for _, exc in dead})
    logger.error("%d validation row(s) could not be stored (%s); kept in %s", len(dead), errors, DEAD_LETTER_KEY)
    system_event_record(
        event_type="license.validation_rows_dead_lettered",
        severity=SystemEvent.Severity.ERROR,
        message=f"{len(dead)} validation row(s) could not be stored and were set apart in Redis ({DEAD_LETTER_KEY}).",
        source="ipcontrol",
        data={"rows": len(dead), "errors": errors, "dead_letter_key": DEAD_LETTER_KEY},
    )


def validation_buffer_length() -> int:
    client = _redis()
    return client.llen(BUFFER_KEY) if client is not None else 0


def validation_rows_store(rows: list[dict], *, paced: bool = False) -> None:
    """Insert attempt rows (idempotently), refresh the bindings they came from, then look for
    collisions on their licenses. A failing detection is logged, never blocks the rows. ``paced``
    (the background flush) leaves the cores to requests between slices of the insert."""
    if not rows:
        return
    _rows_insert(rows, paced=paced)
    try:
        license_ids = collision_candidates(rows)
        if license_ids:
            collisions_detect(license_ids=license_ids)
    except Exception:
        logger.exception("collision detection failed for a batch of %d row(s)", len(rows))


@transaction.atomic
def _rows_insert(rows: list[dict], *, paced: bool) -> None:
    _leases_extend(rows)
    if connection.vendor == "postgresql":
        _rows_copy(rows, paced=paced)
        return
    _drop_dangling_references(rows)
    LicenseValidation.objects.bulk_create(
        [LicenseValidation(**{name: row[name] for name in _FIELDS}) for row in rows],
        ignore_conflicts=True,
        batch_size=INSERT_BATCH,
    )
    _bindings_touch(rows)


def _leases_extend(rows: list[dict]) -> None:
    """Heartbeats: each active machine's lease becomes the latest its rows carry (never shorter),
    and its last heartbeat their time. A machine released meanwhile stays released: it is
    re-admitted by its next heartbeat, if a seat is free. One statement on PostgreSQL."""
    leases: dict[str, tuple[str, str]] = {}
    for row in rows:
        lease, binding_id = row.get(LEASE_FIELD), row["ip_binding_id"]
        if lease and binding_id and (binding_id not in leases or lease > leases[binding_id][0]):
            leases[binding_id] = (lease, row["created_at"])
    if not leases:
        return
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {LicenseIpBinding._meta.db_table} AS b "  # noqa: S608 - a constant table name
                "SET lease_expires_at = v.lease, last_heartbeat_at = v.beat, updated_at = now() "
                "FROM unnest(%s::uuid[], %s::timestamptz[], %s::timestamptz[]) AS v(id, lease, beat) "
                "WHERE b.id = v.id AND b.is_active AND (b.lease_expires_at IS NULL OR b.lease_expires_at < v.lease)",
                [list(leases), [lease for lease, _ in leases.values()], [beat for _, beat in leases.values()]],
            )
        return
    for binding_id, (lease, beat) in leases.items():
        lease_at = datetime.fromisoformat(lease)
        LicenseIpBinding.objects.filter(
            Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=lease_at), pk=binding_id, is_active=True
        ).update(lease_expires_at=lease_at, last_heartbeat_at=datetime.fromisoformat(beat))


def _rows_copy(rows: list[dict], *, paced: bool) -> None:
    """PostgreSQL: COPY the rows into a temporary table, then insert them (skipping ids already
    stored) and refresh the bindings: a fixed number of statements whatever the batch size.

    The insert first trusts the rows' references, checked at once by the foreign keys, inside a
    savepoint; only when one fails (a machine, license or organization deleted since the attempt,
    which is rare) is it made again joined to the referenced tables, with the missing references
    emptied. The joins cost a sixth of a flush's database time, for nothing on almost every flush.

    ``paced``: the insert goes in slices of ``PACED_SLICE`` rows, and after each the flush waits as
    long as the slice took. Written at once, a thousand rows keep one of the database's cores busy
    for ~30 ms, and requests served meanwhile share the other (on the 2-core benchmark that was
    the validation p99); paced, the same work is spread over twice the time at half the load."""
    table, bindings = LicenseValidation._meta.db_table, LicenseIpBinding._meta.db_table
    licenses, organizations = License._meta.db_table, Organization._meta.db_table
    columns = ", ".join(_FIELDS)
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMPORARY TABLE IF NOT EXISTS validation_rows "
            f"(LIKE {table}, position integer NOT NULL) ON COMMIT DELETE ROWS"
        )
        cursor.execute("TRUNCATE validation_rows")  # a batch earlier in the same transaction
        # The driver's own cursor: its errors are Django's only through wrap_database_errors.
        with (
            connection.wrap_database_errors,
            cursor.cursor.copy(f"COPY validation_rows ({columns}, position) FROM STDIN") as copy,
        ):
            for position, row in enumerate(rows):
                copy.write_row([*(row[name] for name in _FIELDS), position])
        foreign_keys = ", ".join(_foreign_keys())
        cursor.execute(f"SET CONSTRAINTS {foreign_keys} IMMEDIATE")
        try:
            with transaction.atomic():
                step = PACED_SLICE if paced else len(rows)
                for start in range(0, len(rows), step):
                    began = time.monotonic()
                    cursor.execute(
                        f"INSERT INTO {table} ({columns}) SELECT {columns} FROM validation_rows "  # noqa: S608
                        "WHERE position >= %s AND position < %s ON CONFLICT DO NOTHING",
                        [start, start + step],
                    )
                    if start + step < len(rows):
                        time.sleep(time.monotonic() - began)  # the cores go to requests as long again
        except IntegrityError:
            cursor.execute(
                f"INSERT INTO {table} ({columns}) "  # noqa: S608 - constant table names
                "SELECT v.id, l.id, o.id, b.id, v.ip_address, v.machine_id, v.hostname, v.is_valid, v.result_code, "
                "v.failure_reason, v.created_at FROM validation_rows v "
                f"LEFT JOIN {licenses} l ON l.id = v.license_id "
                f"LEFT JOIN {organizations} o ON o.id = v.organization_id "
                f"LEFT JOIN {bindings} b ON b.id = v.ip_binding_id ON CONFLICT DO NOTHING"
            )
        cursor.execute(f"SET CONSTRAINTS {foreign_keys} DEFERRED")
        cursor.execute(
            f"UPDATE {bindings} AS b SET last_seen = v.created_at, "  # noqa: S608 - constant table names
            "ip_address = COALESCE(v.ip_address, b.ip_address), updated_at = now() "
            "FROM (SELECT DISTINCT ON (ip_binding_id) ip_binding_id, created_at, ip_address FROM validation_rows "
            "WHERE ip_binding_id IS NOT NULL ORDER BY ip_binding_id, created_at DESC) AS v "
            "WHERE b.id = v.ip_binding_id AND b.last_seen < v.created_at AND (b.last_seen < v.created_at - %s "
            "OR v.ip_address IS NOT NULL AND v.ip_address IS DISTINCT FROM b.ip_address)",
            [LAST_SEEN_STEP],
        )


@lru_cache(maxsize=1)
def _foreign_keys() -> tuple[str, ...]:
    """The names of ``license_validations``' foreign keys (Django names them with a hash)."""
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, LicenseValidation._meta.db_table)
    return tuple(sorted(connection.ops.quote_name(name) for name, c in constraints.items() if c["foreign_key"]))


def _drop_dangling_references(rows: list[dict]) -> None:
    """A binding or license deleted since the attempt must not make the whole batch fail."""
    binding_ids = {row["ip_binding_id"] for row in rows if row["ip_binding_id"]}
    license_ids = {row["license_id"] for row in rows if row["license_id"]}
    organization_ids = {row["organization_id"] for row in rows if row["organization_id"]}
    live_bindings = {str(pk) for pk in LicenseIpBinding.objects.filter(pk__in=binding_ids).values_list("pk", flat=True)}
    live_licenses = {str(pk) for pk in License.all_objects.filter(pk__in=license_ids).values_list("pk", flat=True)}
    live_orgs = {
        str(pk) for pk in Organization.all_objects.filter(pk__in=organization_ids).values_list("pk", flat=True)
    }
    for row in rows:
        if row["ip_binding_id"] not in live_bindings:
            row["ip_binding_id"] = None
        if row["license_id"] not in live_licenses:
            row["license_id"] = None
        if row["organization_id"] not in live_orgs:
            row["organization_id"] = None


def _bindings_touch(rows: list[dict]) -> None:
    """Each binding's ``last_seen`` and IP become those of its latest attempt (never older), when
    that is ``LAST_SEEN_STEP`` newer or comes from another IP."""
    latest: dict[str, tuple[str, str | None]] = {}
    for row in rows:
        binding_id = row["ip_binding_id"]
        if binding_id and (binding_id not in latest or row["created_at"] > latest[binding_id][0]):
            latest[binding_id] = (row["created_at"], row["ip_address"])
    if not latest:
        return
    for binding_id, (seen, ip) in latest.items():
        changes = {"last_seen": datetime.fromisoformat(seen)}
        due = Q(last_seen__lt=changes["last_seen"] - LAST_SEEN_STEP)
        if ip:
            changes["ip_address"] = ip
            due |= ~Q(ip_address=ip) | Q(ip_address__isnull=True)
        LicenseIpBinding.objects.filter(due, pk=binding_id, last_seen__lt=changes["last_seen"]).update(**changes)
