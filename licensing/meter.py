"""Metering AI requests in Redis: an exact count per license and month without a row lock,
written behind to PostgreSQL.

Counting every request with an ``UPDATE`` of the license's rows made concurrent requests of one
license queue behind each other's row lock until commit (WAL flush included): at 200 clients
most database connections waited on it, and the gateway served 60 requests/s where the provider
took 90. Here a request is counted by one Redis script, atomic across every process:

- ``meter:{license}:{period}``, a hash of the requests (``r``) and tokens (``t``) of a month,
  checked against the license's limits and incremented in the same step;
- ``meter:task:{task}``, the mark of a counted task, so counting a task again (a redelivered
  Celery message, a takeover after a crash between counting and committing the claim) and giving
  a task back are both idempotent;
- ``meter:journal``, the list of changes PostgreSQL has yet to take (a request counted or given
  back, the tokens and cost of an answer), pushed in the same step as the count.

An entry may also carry the record of the call it counts (``t``: an AI gateway call's
``processed_tasks`` row, new or changed), or be that record alone. The observers connected to
``METER_RECORDS`` (operations) write the records in the same transaction as the counts, so a
call's count and its record reach PostgreSQL together, exactly once, off the request path.

``meter_flush`` (the beat job, every second) moves the journal into ``licenses.ai_requests_used``,
``license_usage_log`` and the records' tables in one transaction per batch. A batch is first set aside in
``meter:claimed``; the transaction that applies it also records its id (``system_config``
``licensing.meter_applied_batch``), so a flusher that dies at any point leaves a batch that the
next one applies exactly once. A month's hash missing from Redis (its first request, or Redis
restarted without its data) is seeded from PostgreSQL plus the journal not yet applied, under the
flush lock. Tokens are also recomputed nightly from the tasks (``licensing/rollup.py``).

Without Redis (the embedded default) ``licensing.usage`` counts in PostgreSQL as before.
"""

import calendar
import json
import logging
import time
import uuid
from collections import defaultdict
from datetime import date
from decimal import Decimal
from functools import lru_cache
from typing import Protocol

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Value
from django.db.models.functions import Greatest
from django.utils import timezone
from rest_framework import status

from celaest.errors import DomainError
from celaest.hooks import Observers
from celaest.redis import redis_client, reset_with_client
from settings_app.models import SystemConfig

from .models import License, LicenseUsageLog

logger = logging.getLogger(__name__)

JOURNAL = "meter:journal"
CLAIMED = "meter:claimed"
LOCK = "meter:lock"
APPLIED_KEY = "licensing.meter_applied_batch"
#: entries a flush takes at once
FLUSH_BATCH = 5000
SEED = "SEED"
REQUESTS_REACHED = "REQUESTS"
TOKENS_REACHED = "TOKENS"

# Returns {outcome, the month's requests, its tokens} (after counting; 0, 0 when counted before).
_RESERVE = """
if redis.call('EXISTS', KEYS[2]) == 1 then return {'AGAIN', 0, 0} end
if redis.call('EXISTS', KEYS[1]) == 0 then return {'SEED', 0, 0} end
local requests = tonumber(redis.call('HGET', KEYS[1], 'r') or '0')
local tokens = tonumber(redis.call('HGET', KEYS[1], 't') or '0')
if tonumber(ARGV[1]) >= 0 and requests >= tonumber(ARGV[1]) then return {'REQUESTS', requests, tokens} end
if tonumber(ARGV[2]) >= 0 and tokens >= tonumber(ARGV[2]) then return {'TOKENS', requests, tokens} end
requests = redis.call('HINCRBY', KEYS[1], 'r', 1)
redis.call('SET', KEYS[2], '1', 'EX', ARGV[4])
if ARGV[5] == '1' then redis.call('RPUSH', KEYS[3], ARGV[3]) end
return {'OK', requests, tokens}
"""

_RELEASE = """
if redis.call('DEL', KEYS[2]) == 0 then
  if ARGV[2] == '1' and ARGV[3] ~= '' then redis.call('RPUSH', KEYS[3], ARGV[3]) end
  return 0
end
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HINCRBY', KEYS[1], 'r', -1) end
if ARGV[2] == '1' then redis.call('RPUSH', KEYS[3], ARGV[1]) end
return 1
"""

_COMMIT = """
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HINCRBY', KEYS[1], 't', ARGV[2]) end
if ARGV[3] == '1' then redis.call('RPUSH', KEYS[2], ARGV[1]) end
return 1
"""

_SEED = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'r', ARGV[1], 't', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
"""

# Sets a batch aside: the journal's first entries move to CLAIMED, behind the batch's id.
_CLAIM = """
if redis.call('EXISTS', KEYS[2]) == 1 then return redis.call('GET', KEYS[2]) end
local entries = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[2]) - 1)
if #entries == 0 then return false end
redis.call('LTRIM', KEYS[1], #entries, -1)
local batch = ARGV[1] .. '\\n' .. table.concat(entries, '\\n')
redis.call('SET', KEYS[2], batch)
return batch
"""

_UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def meter_client():
    """The Redis client the meter counts in, or None (then PostgreSQL counts)."""
    return redis_client()


@reset_with_client
@lru_cache(maxsize=1)
def _scripts() -> dict:
    client = redis_client()
    return {
        name: client.register_script(source)
        for name, source in (
            ("reserve", _RESERVE),
            ("release", _RELEASE),
            ("commit", _COMMIT),
            ("seed", _SEED),
            ("claim", _CLAIM),
            ("unlock", _UNLOCK),
        )
    }


def _period_key(license_id, period_start: date) -> str:
    return f"meter:{license_id}:{period_start.isoformat()}"


def _task_key(task_id) -> str:
    return f"meter:task:{task_id}"


def _hash_ttl(period_end: date) -> int:
    """Seconds a month's hash is kept: to the month's end, and 40 days more."""
    return max((period_end - timezone.now().date()).days + 41, 1) * 86400


def _mark_ttl() -> int:
    """Seconds a counted task's mark is kept: longer than any claim can stay open."""
    return settings.AI_TASK_STALE_SECONDS * 3 + 3600


class MeterRecordsObserver(Protocol):
    def records_apply(self, records: list[dict]) -> None:
        """Write ``records`` (the ``t`` of journal entries, in the order they were counted) in
        the caller's transaction."""


#: who writes the records the journal carries (``operations`` connects its own in ``ready()``)
METER_RECORDS: Observers[MeterRecordsObserver] = Observers()


def records_apply(records: list[dict | None]) -> None:
    """Write call records now (a None is no record), in the caller's transaction (the meter's
    flush, or a count made without Redis or written through)."""
    records = [record for record in records if record is not None]
    if records:
        for observer in METER_RECORDS:
            observer.records_apply(records)


def _change(license: License, period_start: date, record: dict | None = None, **amounts) -> dict:
    """One change of a license's month, as the journal holds it, with the record of its call."""
    change = {"l": str(license.pk), "o": str(license.organization_id), "p": period_start.isoformat(), **amounts}
    if record is not None:
        change["t"] = record
    return change


def _journaled() -> str:
    """'1' when changes go to the journal (written behind), '0' when written through."""
    return "0" if settings.LICENSE_METER_WRITE_THROUGH else "1"


def meter_reserve(
    *,
    license: License,
    task_id,
    period: tuple[date, date],
    request_limit: int | None,
    token_limit: int | None,
    record: dict | None = None,
) -> tuple[str, int, int]:
    """Count one request of ``task_id`` against the month unless a limit is reached (``record``
    journaled with the count, only if counted now). Returns the outcome, ``"OK"`` (counted now,
    or already), ``REQUESTS_REACHED`` or ``TOKENS_REACHED``, with the month's requests (this one
    included) and tokens (both 0 when it was counted before)."""
    start, end = period
    keys = [_period_key(license.pk, start), _task_key(task_id), JOURNAL]
    change = _change(license, start, record, r=1)
    args = [
        -1 if request_limit is None else request_limit,
        -1 if token_limit is None else token_limit,
        json.dumps(change),
        _mark_ttl(),
        _journaled(),
    ]
    result, requests, tokens = _scripts()["reserve"](keys=keys, args=args)
    if result == SEED.encode():
        _seed(license, period)
        result, requests, tokens = _scripts()["reserve"](keys=keys, args=args)
    result = result.decode()
    if result == "OK":
        _written_through(change)
    return ("OK" if result == "AGAIN" else result), requests, tokens


def meter_release(*, license: License, task_id, period_start: date, record: dict | None = None) -> bool:
    """Give back the request counted for ``task_id`` (no provider answered). Idempotent; ``record``
    is journaled either way."""
    keys = [_period_key(license.pk, period_start), _task_key(task_id), JOURNAL]
    change = _change(license, period_start, record, r=-1)
    alone = json.dumps({"t": record}) if record is not None else ""
    released = bool(_scripts()["release"](keys=keys, args=[json.dumps(change), _journaled(), alone]))
    _written_through(change if released else {"t": record})
    return released


def meter_commit(
    *,
    license: License,
    period_start: date,
    tokens_input: int,
    tokens_output: int,
    tokens_cached: int,
    cost: Decimal,
    record: dict | None = None,
) -> None:
    """Add what an answered request consumed to its month (``record`` journaled with it)."""
    change = _change(license, period_start, record, i=tokens_input, x=tokens_output, c=tokens_cached, d=str(cost))
    keys = [_period_key(license.pk, period_start), JOURNAL]
    _scripts()["commit"](keys=keys, args=[json.dumps(change), tokens_input + tokens_output, _journaled()])
    _written_through(change)


def meter_record(record: dict) -> None:
    """Journal a call's record that changes no count (a failure whose request stays counted)."""
    change = {"t": record}
    if not settings.LICENSE_METER_WRITE_THROUGH:
        redis_client().rpush(JOURNAL, json.dumps(change))
    _written_through(change)


def _written_through(change: dict) -> None:
    """With ``LICENSE_METER_WRITE_THROUGH`` (the test suite, whose tests read the counters right
    after a call) the change goes to PostgreSQL at once, in the caller's transaction."""
    if settings.LICENSE_METER_WRITE_THROUGH:
        _months_apply([change])
        records_apply(_records([change]))


def _records(changes: list[dict]) -> list[dict]:
    return [change["t"] for change in changes if change.get("t") is not None]


# -- seeding -------------------------------------------------------------------------------------


def _seed(license: License, period: tuple[date, date]) -> None:
    """Put a month's hash back: PostgreSQL's row plus the journal not yet applied, read under the
    flush lock so that no batch moves from one to the other meanwhile."""
    start, end = period
    client = redis_client()
    with _FlushLock(wait=True) as held:
        if not held:  # a flush holds the lock for longer than a flush takes: count nothing blind
            raise MeterBusy()
        row = LicenseUsageLog.objects.filter(license=license, period_start=start, period_end=end).first()
        requests = row.ai_requests_count if row else 0
        tokens = (row.tokens_input + row.tokens_output) if row else 0
        pending = client.lrange(JOURNAL, 0, -1)
        claimed = client.get(CLAIMED)
        if claimed is not None:
            batch_id, _, body = claimed.decode().partition("\n")
            if not _applied(batch_id):
                pending = [*body.split("\n"), *pending]
        license_id, month = str(license.pk), start.isoformat()
        for raw in pending:
            change = json.loads(raw)
            if change.get("l") == license_id and change.get("p") == month:
                requests += change.get("r", 0)
                tokens += change.get("i", 0) + change.get("x", 0)
        _scripts()["seed"](keys=[_period_key(license.pk, start)], args=[max(requests, 0), tokens, _hash_ttl(end)])


# -- writing behind ------------------------------------------------------------------------------


class MeterBusy(DomainError):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    code = "usage_meter_busy"
    message = "The usage meter could not be read just now; try again shortly."


class _FlushLock:
    """The one flusher (or seeder) at a time: a Redis lock that expires if its holder dies.
    Entered, it says whether it is held (``wait``: for up to ``WAIT_SECONDS``)."""

    WAIT_SECONDS = 10.0

    def __init__(self, *, wait: bool):
        self.wait = wait
        self.token = uuid.uuid4().hex
        self.held = False

    def __enter__(self):
        client = redis_client()
        deadline = time.monotonic() + self.WAIT_SECONDS
        while not client.set(LOCK, self.token, nx=True, px=30_000):
            if not self.wait or time.monotonic() > deadline:
                return False
            time.sleep(0.002)
        self.held = True
        return True

    def __exit__(self, *exc):
        if self.held:
            _scripts()["unlock"](keys=[LOCK], args=[self.token])


def _applied(batch_id: str) -> bool:
    return SystemConfig.objects.filter(key=APPLIED_KEY).values_list("value", flat=True).first() == batch_id


def meter_flush() -> int:
    """Write the journal to PostgreSQL, a batch at a time. Returns the changes written; 0 at once
    when another flush runs."""
    if meter_client() is None:
        return 0
    written = 0
    with _FlushLock(wait=False) as held:
        if not held:
            return 0
        client = redis_client()
        while True:
            claimed = _scripts()["claim"](keys=[JOURNAL, CLAIMED], args=[uuid.uuid4().hex, FLUSH_BATCH])
            if not claimed:
                return written
            batch_id, _, body = claimed.decode().partition("\n")
            changes = [json.loads(raw) for raw in body.split("\n")]
            _apply(batch_id, changes)
            client.delete(CLAIMED)
            written += len(changes)


def _apply(batch_id: str, changes: list[dict]) -> None:
    """One batch into PostgreSQL, in one transaction that also records the batch as applied."""
    with transaction.atomic():
        if _applied(batch_id):
            return
        _months_apply(changes)
        records_apply(_records(changes))
        _applied_set(batch_id)


def _months_apply(changes: list[dict]) -> None:
    months: dict = defaultdict(lambda: {"r": 0, "i": 0, "x": 0, "c": 0, "d": Decimal(0), "o": None})
    for change in changes:
        if "l" not in change:  # a record alone
            continue
        month = months[change["l"], change["p"]]
        month["o"] = change["o"]
        for field in ("r", "i", "x", "c"):
            month[field] += change.get(field, 0)
        month["d"] += Decimal(change.get("d", "0"))
    # A license deleted since its requests were counted has no row to add to: its changes are
    # dropped (logged), so that one such batch cannot stop every later one from being written.
    known = {
        str(pk) for pk in License._base_manager.filter(pk__in={key[0] for key in months}).values_list("pk", flat=True)
    }
    now = timezone.now()
    for (license_id, month_start), month in sorted(months.items()):
        if license_id not in known:
            logger.warning("Usage of deleted license %s for %s dropped: %s", license_id, month_start, month)
            continue
        if month["r"]:
            License._base_manager.filter(pk=license_id).update(
                ai_requests_used=_at_least_zero("ai_requests_used", month["r"])
            )
        _month_add(license_id, month["o"], date.fromisoformat(month_start), month, now)


def _at_least_zero(column: str, change):
    return Greatest(F(column) + Value(change), Value(0))


def _month_add(license_id, organization_id, start: date, month: dict, now) -> None:
    end = start.replace(day=calendar.monthrange(start.year, start.month)[1])
    row, _ = LicenseUsageLog.objects.get_or_create(
        license_id=license_id, period_start=start, period_end=end, defaults={"organization_id": organization_id}
    )
    LicenseUsageLog.objects.filter(pk=row.pk).update(
        ai_requests_count=_at_least_zero("ai_requests_count", month["r"]),
        tokens_input=_at_least_zero("tokens_input", month["i"]),
        tokens_output=_at_least_zero("tokens_output", month["x"]),
        tokens_cached=_at_least_zero("tokens_cached", month["c"]),
        calculated_cost=_at_least_zero("calculated_cost", month["d"]),
        updated_at=now,
    )


def _applied_set(batch_id: str) -> None:
    """By SQL: a write through the model would announce a change of the platform's configuration
    every second, retiring every process's copy of it."""
    value = SystemConfig._meta.get_field("value").get_db_prep_save(batch_id, connection)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO system_config (key, value, description, is_sensitive, updated_at) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
            "updated_at = excluded.updated_at",
            [APPLIED_KEY, value, "The last usage meter batch written (licensing.meter).", False, timezone.now()],
        )


def meter_pending() -> int:
    """Changes counted in Redis that PostgreSQL has yet to take."""
    client = meter_client()
    if client is None:
        return 0
    return client.llen(JOURNAL) + (1 if client.exists(CLAIMED) else 0)
