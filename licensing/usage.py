"""Metering AI work against a license: reserve a request before the provider is called, add its
tokens and cost afterwards, give the request back if no provider answered.

The monthly limits (``ai_requests_per_month``, ``tokens_per_month`` from
``license_effective_limits``) can never be overshot by concurrent requests in any number of
processes. With Redis they are counted there (``licensing.meter``: one atomic script, no row
lock, written behind to PostgreSQL); without it (the embedded default) by one conditional UPDATE
on the period's ``license_usage_log`` row (``... WHERE ai_requests_count < limit``), taken while
the license row is locked by its own counter update. A period is a calendar month (UTC).
"""

import calendar
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from celaest.errors import LimitExceeded, PaymentRequired

from .meter import (
    REQUESTS_REACHED,
    TOKENS_REACHED,
    meter_client,
    meter_commit,
    meter_record,
    meter_release,
    meter_reserve,
    records_apply,
)
from .models import License, LicenseUsageLog
from .selectors import license_effective_limits

LIVE_STATUSES = (License.Status.ACTIVE, License.Status.TRIAL)


@dataclass(frozen=True)
class MonthUsage:
    """A license's AI requests and tokens counted this month."""

    requests: int
    tokens: int


def usage_period(day: date | None = None) -> tuple[date, date]:
    day = day or timezone.now().date()
    return day.replace(day=1), day.replace(day=calendar.monthrange(day.year, day.month)[1])


def _period_row(license: License, period: tuple[date, date]) -> LicenseUsageLog:
    start, end = period
    try:
        with transaction.atomic():
            row, _ = LicenseUsageLog.objects.get_or_create(
                license=license,
                period_start=start,
                period_end=end,
                defaults={"organization_id": license.organization_id},
            )
    except IntegrityError:  # created by a concurrent request between our get and create
        row = LicenseUsageLog.objects.get(license=license, period_start=start, period_end=end)
    return row


def _db(model, name: str, value):
    """``value`` as the database takes it in ``model.name``'s column (UUIDs, dates, decimals)."""
    return model._meta.get_field(name).get_db_prep_save(value, connection)


# The two statements below run on every AI request (the period's row twice), so they are SQL:
# building them with the ORM took longer than running them. Column names are constants here.


def _period_update(license: License, period: tuple[date, date], add: dict, *, where: str = "", params=()) -> bool:
    """Add ``add`` (column: amount) to the period's usage row where the extra condition ``where``
    (`` AND ...`` with ``params``) holds; create the row first when it is the period's first use.
    One statement on the common path. Returns whether the row was updated."""
    start, end = period
    sets = ", ".join(f"{column} = {column} + %s" for column in add)
    sql = (
        f"UPDATE {LicenseUsageLog._meta.db_table} SET {sets}, updated_at = %s "  # noqa: S608 - constant names
        f"WHERE license_id = %s AND period_start = %s AND period_end = %s{where}"
    )
    values = [
        *(_db(LicenseUsageLog, column, amount) for column, amount in add.items()),
        _db(LicenseUsageLog, "updated_at", timezone.now()),
        _db(LicenseUsageLog, "license", license.pk),
        _db(LicenseUsageLog, "period_start", start),
        _db(LicenseUsageLog, "period_end", end),
        *params,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        if cursor.rowcount:
            return True
        _period_row(license, period)
        cursor.execute(sql, values)
        return bool(cursor.rowcount)


def _live_where(license: License) -> tuple[str, list]:
    """The condition that ``license`` is live now, as SQL on its row (read there, not from a
    process's copy: a suspension another process made may not be announced here yet)."""
    statuses = ", ".join(["%s"] * len(LIVE_STATUSES))
    where = f"id = %s AND deleted_at IS NULL AND status IN ({statuses}) AND (expires_at IS NULL OR expires_at > %s)"
    now = _db(License, "expires_at", timezone.now())
    return where, [_db(License, "id", license.pk), *LIVE_STATUSES, now]


def _count_live(license: License) -> bool:
    """Add one to a live license's ``ai_requests_used``. Returns whether it was live."""
    where, params = _live_where(license)
    sql = f"UPDATE {License._meta.db_table} SET ai_requests_used = ai_requests_used + 1 WHERE {where}"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return bool(cursor.rowcount)


def _is_live(license: License) -> bool:
    """Whether ``license`` is live now, read from its row without locking it."""
    where, params = _live_where(license)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT 1 FROM {License._meta.db_table} WHERE {where}", params)  # noqa: S608 - constant names
        return cursor.fetchone() is not None


def _limit_refusal(which: str, limits: dict) -> LimitExceeded:
    if which == REQUESTS_REACHED:
        return LimitExceeded(
            "The license's monthly AI request limit is reached.",
            code="ai_requests_limit_reached",
            details={"limit": limits.get("ai_requests_per_month")},
        )
    return LimitExceeded(
        "The license's monthly token limit is reached.",
        code="tokens_limit_reached",
        details={"limit": limits.get("tokens_per_month")},
    )


@transaction.atomic(savepoint=False)  # a caller that recovers from a refusal holds its own savepoint
def license_usage_reserve(
    *, license: License, task_id, record: dict | None = None, live_checked: bool = False
) -> MonthUsage | None:
    """Count the request of ``task_id`` (saved in this transaction, or recorded by ``record``,
    see ``licensing.meter``) against ``license`` or refuse it (402 inactive, 429 limit reached).
    Counting a task again does nothing. Returns the month's use as counted in Redis (None
    without it, and when the task was counted before).

    ``live_checked``: the caller found ``license`` live in a copy checked against the license's
    generation at the start of its request (the gateway's ``paying_license``), so with Redis its
    row is not read again; a suspension committed in the milliseconds since is seen by the next
    request. Without Redis the count's own UPDATE checks it anyway."""
    limits = license_effective_limits(license=license)
    request_limit = limits.get("ai_requests_per_month")
    token_limit = limits.get("tokens_per_month")
    if meter_client() is not None:
        if not live_checked and not _is_live(license):
            raise PaymentRequired("The license is not active.", code="license_inactive")
        outcome, requests, tokens = meter_reserve(
            license=license,
            task_id=task_id,
            period=usage_period(),
            request_limit=request_limit,
            token_limit=token_limit,
            record=record,
        )
        if outcome != "OK":
            raise _limit_refusal(outcome, limits)
        return MonthUsage(requests=requests, tokens=tokens) if requests else None
    # The license's own counter first: it is also the lock that orders concurrent reservations.
    if not _count_live(license):
        raise PaymentRequired("The license is not active.", code="license_inactive")
    where, params = "", []
    if request_limit is not None:
        where, params = where + " AND ai_requests_count < %s", [*params, request_limit]
    if token_limit is not None:
        where, params = where + " AND tokens_input + tokens_output < %s", [*params, token_limit]
    period = usage_period()
    if not _period_update(license, period, {"ai_requests_count": 1}, where=where, params=params):
        row = _period_row(license, period)
        if request_limit is not None and row.ai_requests_count >= request_limit:
            raise _limit_refusal(REQUESTS_REACHED, limits)
        raise _limit_refusal(TOKENS_REACHED, limits)
    records_apply([record])
    return None


@transaction.atomic
def license_usage_release(
    *, license: License, task_id, period_start: date | None = None, record: dict | None = None
) -> None:
    """Give back the request counted for ``task_id``, which no provider answered (nothing was
    consumed). In Redis at once: giving a task's request back twice does nothing, so a caller's
    transaction that fails later cannot make it count twice. ``record``: see ``licensing.meter``."""
    start, end = usage_period(period_start)
    if meter_client() is not None:
        meter_release(license=license, task_id=task_id, period_start=start, record=record)
        return
    records_apply([record])
    License.objects.filter(pk=license.pk, ai_requests_used__gt=0).update(ai_requests_used=F("ai_requests_used") - 1)
    LicenseUsageLog.objects.filter(license=license, period_start=start, period_end=end, ai_requests_count__gt=0).update(
        ai_requests_count=F("ai_requests_count") - 1, updated_at=timezone.now()
    )


def license_usage_commit(
    *,
    license: License,
    tokens_input: int,
    tokens_output: int,
    tokens_cached: int,
    cost: Decimal,
    period_start: date | None = None,
    record: dict | None = None,
) -> None:
    """Add what an answered request consumed to the period it was reserved in. (In Redis at once:
    should the caller's transaction fail after, the nightly roll-up recomputes the tokens and cost
    from the tasks.) ``record``: see ``licensing.meter``."""
    if meter_client() is not None:
        meter_commit(
            license=license,
            period_start=usage_period(period_start)[0],
            tokens_input=tokens_input,
            tokens_output=tokens_output,
            tokens_cached=tokens_cached,
            cost=cost,
            record=record,
        )
        return
    records_apply([record])
    _period_update(
        license,
        usage_period(period_start),
        {
            "tokens_input": tokens_input,
            "tokens_output": tokens_output,
            "tokens_cached": tokens_cached,
            "calculated_cost": cost,
        },
    )


def license_usage_record(record: dict) -> None:
    """Write the record of a call that changes no count (see ``licensing.meter``): journaled with
    Redis, at once without it."""
    if meter_client() is not None:
        meter_record(record)
        return
    records_apply([record])
