"""Budgets of the AI gateway: what a user API key and the license that pays may spend, held
exactly under any number of concurrent calls in any number of processes.

A call reserves its worst case before any provider is called (``budget_reserve``), and afterwards
either replaces the reservation by what it really spent (``budget_settle``) or gives it all back
(``budget_release``). A reservation is taken against, at once:

- the key's USD spend of the day and of the month (``UserApiKey.spend_limit_daily_usd`` /
  ``spend_limit_monthly_usd``), UTC calendar day and month;
- the license's USD spend of the month (``ai_usd_per_month`` in its plan's ``limits`` overlaid by
  its ``custom_limits``);
- the key's tokens of the minute (``tokens_per_minute``: the estimated tokens, replaced by the
  real ones when settled), a fixed window of a UTC minute;
- one of the key's requests in flight (``max_requests_in_flight``).

Each is a counter in Redis (``REDIS_URL``), moved by one Lua script per step, so the check and the
increment are one atomic step: 50 concurrent calls against a budget of N calls' worth take exactly
N, and a call refused by any one limit reserves nothing. A counter holds what was spent plus what
is reserved, in nano-USD (integers: 10⁻⁹ USD, the precision of a price per 1k tokens to 6 places;
exact up to 2⁵³ nano-USD, about 9 million USD per counter). Spend is always counted, limited or
not, so a limit set in the middle of a month applies to the month's real spend. Amounts settle in
the window they were reserved in (a call across midnight counts for the day it started).

Crash safety: every reservation is also listed in ``budget:pending`` (a sorted set scored by its
deadline, ``AI_BUDGET_RESERVATION_TTL_SECONDS`` after it was taken) with what it took in
``budget:pending:records``. Every reservation first gives back the reservations whose deadline has
passed (a process that died between reserving and settling), in the same script, so an abandoned
reservation never counts against a limit once its deadline is past. A call that outlives the TTL
(a long stream) keeps its reservation with ``budget_renew``; one settled after its reservation was
given back adds its real spend then. Settling or releasing a call again within ten minutes does
nothing (``budget:done:{call}``).

The license's month counter, when Redis lacks it (a new month, Redis restarted without its data),
starts from the month's cost in PostgreSQL (``license_usage_log.calculated_cost``). The key's
counters start at zero. Times are this process's clock (``timezone.now``), so a deadline is as
precise as the hosts' clocks agree (seconds, against a TTL of minutes).

Without Redis nothing can be counted across processes: a key or license with a limit set is
refused (503 ``budgets_unavailable``), one without goes through.
"""

import json
import logging
import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache

from django.conf import settings
from django.db.models import Sum
from django.utils import timezone
from rest_framework import status

from aimesh.models import AIModel
from aimesh.providers import Usage
from celaest.errors import DomainError, Forbidden, LimitExceeded
from celaest.redis import redis_client, reset_with_client
from licensing.models import License, LicenseUsageLog
from licensing.selectors import license_effective_limits
from licensing.usage import MonthUsage, usage_period
from settings_app.models import UserApiKey

from .services import usage_cost

logger = logging.getLogger(__name__)

#: the key in a plan's ``limits`` / a license's ``custom_limits`` of its monthly AI budget in USD
LICENSE_BUDGET_LIMIT = "ai_usd_per_month"
NANO_USD = Decimal("0.000000001")
PENDING = "budget:pending"
PENDING_RECORDS = "budget:pending:records"
#: expired reservations one script gives back at most (the rest: by the next reservation)
_SWEEP_BATCH = 200
#: how long a settled call's mark is kept: a second settle or release within it does nothing (a
#: release in an error path after a settle comes within seconds). One small key per call: at 1,000
#: calls a second, some 600,000 keys (about 50 MB).
_DONE_SECONDS = 600


class BudgetsUnavailable(DomainError):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    code = "budgets_unavailable"
    message = "Spend limits need the shared counter store (Redis), which is not configured."


@dataclass(frozen=True)
class _Counter:
    """One limited quantity of a reservation: its Redis key, the limit code it answers to, the
    unit it is counted in and when its window resets."""

    key: str
    code: str
    limit: int | None
    amount: int
    ttl: int
    reset_at: datetime
    in_usd: bool
    seed_from: str = ""  # a license id: seeded from PostgreSQL when missing


@dataclass(frozen=True)
class BudgetReservation:
    """What ``budget_reserve`` took; pass it to ``budget_settle`` or ``budget_release``."""

    call_id: str
    #: Redis keys of the key's day and month USD, the license's month USD, the key's minute tokens
    counter_keys: tuple[str, str, str, str]
    cost_nanos: int
    tokens: int
    in_flight_key: str
    deadline: datetime
    #: each counter's use once this call was reserved, by its limit's code (none when reserved before)
    used: dict[str, int] = field(default_factory=dict)


# -- the windows and keys ------------------------------------------------------------------------


def _day_end(now: datetime) -> datetime:
    return datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), tzinfo=UTC)


def _month_end(now: datetime) -> datetime:
    return datetime.combine(usage_period(now.date())[1] + timedelta(days=1), datetime.min.time(), tzinfo=UTC)


def _minute_end(now: datetime) -> datetime:
    return now.replace(second=0, microsecond=0) + timedelta(minutes=1)


def _seconds_until(moment: datetime, now: datetime) -> int:
    return max(math.ceil((moment - now).total_seconds()), 1)


def key_day_counter(api_key_id, day: date) -> str:
    return f"budget:key:{api_key_id}:day:{day.isoformat()}"


def key_month_counter(api_key_id, day: date) -> str:
    return f"budget:key:{api_key_id}:month:{day:%Y-%m}"


def license_month_counter(license_id, day: date) -> str:
    return f"budget:license:{license_id}:month:{day:%Y-%m}"


def key_minute_counter(api_key_id, now: datetime) -> str:
    return f"budget:key:{api_key_id}:tpm:{now:%Y-%m-%dT%H:%M}"


def key_in_flight_set(api_key_id) -> str:
    return f"budget:key:{api_key_id}:in-flight"


def _done_key(call_id: str) -> str:
    return f"budget:done:{call_id}"


# -- amounts -------------------------------------------------------------------------------------


def usd_to_nanos(amount: Decimal, *, rounding: str = ROUND_HALF_UP) -> int:
    return int((Decimal(amount) / NANO_USD).to_integral_value(rounding=rounding))


def nanos_to_usd(nanos: int) -> Decimal:
    """Exact, without trailing zeros, never in exponent form (``10``, not ``1E+1``)."""
    value = (Decimal(nanos) * NANO_USD).normalize()
    return value.quantize(Decimal(1)) if value.as_tuple().exponent > 0 else value


def budget_worst_case_usd(*, model: AIModel, input_tokens: int, max_output_tokens: int) -> Decimal:
    """What a call can cost at most: its (estimated) input uncached and every output token it may
    produce, at the model's prices, by the same rule that prices its real usage (``usage_cost``)."""
    return usage_cost(model=model, usage=Usage(tokens_input=input_tokens, tokens_output=max_output_tokens))


def license_budget_usd(license: License) -> Decimal | None:
    """The license's monthly AI budget in USD (its custom limits over its plan's), None when it
    has none. A value that is not a non-negative number is a budget of 0 (logged): a typo in an
    admin's JSON must not lift the cap."""
    value = license_effective_limits(license=license).get(LICENSE_BUDGET_LIMIT)
    if value is None:
        return None
    try:
        budget = Decimal(str(value))
    except InvalidOperation:
        budget = Decimal("-1")
    if not budget.is_finite() or budget < 0:
        logger.warning("License %s has an invalid %s (%r): treated as 0.", license.pk, LICENSE_BUDGET_LIMIT, value)
        return Decimal("0")
    return budget


def _limit_nanos(limit: Decimal | None) -> int | None:
    # Rounded down: a limit of 0.0000000015 USD allows one nano-USD, never two.
    return None if limit is None else int((Decimal(limit) / NANO_USD).to_integral_value(rounding="ROUND_FLOOR"))


def _has_limits(api_key: UserApiKey, license_budget: Decimal | None) -> bool:
    return license_budget is not None or any(
        value is not None
        for value in (
            api_key.spend_limit_daily_usd,
            api_key.spend_limit_monthly_usd,
            api_key.tokens_per_minute,
            api_key.max_requests_in_flight,
        )
    )


# -- the scripts ---------------------------------------------------------------------------------

# Gives back the reservations whose deadline has passed (KEYS[1] the pending set, KEYS[2] their
# records, ARGV[1] now in ms). Shared by the scripts that read counters.
_SWEEP = f"""
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, {_SWEEP_BATCH})
for _, id in ipairs(expired) do
  local raw = redis.call('HGET', KEYS[2], id)
  if raw then
    local record = cjson.decode(raw)
    for key, amount in pairs(record.c) do
      if redis.call('EXISTS', key) == 1 then redis.call('DECRBY', key, amount) end
    end
    if record.f ~= '' then redis.call('ZREM', record.f, id) end
    redis.call('HDEL', KEYS[2], id)
  end
  redis.call('ZREM', KEYS[1], id)
end
"""

# KEYS: pending set, pending records, the call's done mark, the key's in-flight set, counters...
# ARGV: now (ms), deadline (ms), call id, the call's record (JSON), in-flight limit (-1: none),
# in-flight set's TTL, then four per counter: amount, limit (-1: none), TTL, '1' if it must exist.
# Returns {'OK', each counter after it}, {'AGAIN'} (reserved already), {'SEED', i} (counter i is
# missing) or {'REFUSED', i, used} (i = 0: in flight).
_RESERVE = (
    _SWEEP
    + """
if redis.call('EXISTS', KEYS[3]) == 1 or redis.call('HEXISTS', KEYS[2], ARGV[3]) == 1 then return {'AGAIN'} end
local counters = #KEYS - 4
for i = 1, counters do
  if ARGV[6 + 4 * i] == '1' and redis.call('EXISTS', KEYS[4 + i]) == 0 then return {'SEED', i} end
end
for i = 1, counters do
  local limit = tonumber(ARGV[4 + 4 * i])
  if limit >= 0 then
    local used = redis.call('GET', KEYS[4 + i]) or '0'
    if tonumber(used) + tonumber(ARGV[3 + 4 * i]) > limit then return {'REFUSED', i, used} end
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', ARGV[1])
local in_flight_limit = tonumber(ARGV[5])
if in_flight_limit >= 0 then
  local in_flight = redis.call('ZCARD', KEYS[4])
  if in_flight >= in_flight_limit then return {'REFUSED', 0, tostring(in_flight)} end
end
local out = {'OK'}
for i = 1, counters do
  out[i + 1] = redis.call('INCRBY', KEYS[4 + i], ARGV[3 + 4 * i])
  if redis.call('TTL', KEYS[4 + i]) < 0 then redis.call('EXPIRE', KEYS[4 + i], ARGV[5 + 4 * i]) end
end
redis.call('ZADD', KEYS[4], ARGV[2], ARGV[3])
redis.call('EXPIRE', KEYS[4], ARGV[6])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
return out
"""
)

# KEYS: pending set, pending records, the call's done mark, the key's in-flight set, counters...
# ARGV: call id, the done mark's TTL, then the real amount of each counter.
# Replaces what the call reserved by its real amounts (all of them when its reservation was given
# back already). Returns 1 (settled), 2 (settled after its reservation expired) or 0 (done before).
_SETTLE = """
if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
redis.call('SET', KEYS[3], '1', 'EX', ARGV[2])
local raw = redis.call('HGET', KEYS[2], ARGV[1])
local reserved = {}
if raw then
  reserved = cjson.decode(raw).c
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('ZREM', KEYS[1], ARGV[1])
end
redis.call('ZREM', KEYS[4], ARGV[1])
for i = 5, #KEYS do
  local delta = tonumber(ARGV[i - 2]) - tonumber(reserved[KEYS[i]] or '0')
  if delta ~= 0 and redis.call('EXISTS', KEYS[i]) == 1 then
    redis.call('INCRBY', KEYS[i], string.format('%d', delta))
  end
end
if raw then return 1 end
return 2
"""

# KEYS: pending set, pending records, the call's in-flight set. ARGV: call id, new deadline (ms).
_RENEW = """
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then return 0 end
redis.call('ZADD', KEYS[1], 'XX', ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[3], 'XX', ARGV[2], ARGV[1])
return 1
"""

# KEYS: pending set, pending records, then keys to read (counters, the meter's month hash). ARGV:
# now (ms). Gives back expired reservations, then reads: GET for counters, HMGET r t for the hash.
_READ = (
    _SWEEP
    + """
local out = {}
for i = 3, #KEYS - 1 do out[#out + 1] = redis.call('GET', KEYS[i]) or false end
local meter = redis.call('HMGET', KEYS[#KEYS], 'r', 't')
out[#out + 1] = meter[1]
out[#out + 1] = meter[2]
return out
"""
)


@reset_with_client
@lru_cache(maxsize=1)
def _scripts() -> dict:
    client = redis_client()
    return {
        name: client.register_script(source)
        for name, source in (("reserve", _RESERVE), ("settle", _SETTLE), ("renew", _RENEW), ("read", _READ))
    }


def _now_ms(now: datetime) -> int:
    return int(now.timestamp() * 1000)


# -- the service ---------------------------------------------------------------------------------


def budget_check_model(api_key: UserApiKey, model_name: str) -> None:
    """Refuse (403 ``model_not_allowed``) a model the key is not allowed to call."""
    allowed = api_key.allowed_models
    if allowed and model_name not in allowed:
        raise Forbidden(
            f"This API key may not call the model {model_name!r}.",
            code="model_not_allowed",
            details={"model": model_name, "allowed_models": list(allowed)},
        )


def _counters(
    *, api_key: UserApiKey, license: License, license_budget, cost_nanos: int, tokens: int, now: datetime
) -> list[_Counter]:
    day, month, minute = _day_end(now), _month_end(now), _minute_end(now)
    return [
        _Counter(
            key_day_counter(api_key.pk, now.date()),
            "key_budget_daily",
            _limit_nanos(api_key.spend_limit_daily_usd),
            cost_nanos,
            _seconds_until(day, now) + 86400,
            day,
            in_usd=True,
        ),
        _Counter(
            key_month_counter(api_key.pk, now.date()),
            "key_budget_monthly",
            _limit_nanos(api_key.spend_limit_monthly_usd),
            cost_nanos,
            _seconds_until(month, now) + 2 * 86400,
            month,
            in_usd=True,
        ),
        _Counter(
            license_month_counter(license.pk, now.date()),
            "license_budget_monthly",
            _limit_nanos(license_budget),
            cost_nanos,
            _seconds_until(month, now) + 2 * 86400,
            month,
            in_usd=True,
            seed_from=str(license.pk),
        ),
        _Counter(
            key_minute_counter(api_key.pk, now),
            "key_tokens_per_minute",
            api_key.tokens_per_minute,
            tokens,
            _seconds_until(minute, now) + 120,
            minute,
            in_usd=False,
        ),
    ]


def _refusal(counter: _Counter | None, *, api_key: UserApiKey, used: int, now: datetime) -> LimitExceeded:
    if counter is None:
        limit = api_key.max_requests_in_flight
        return LimitExceeded(
            f"This API key has its limit of {limit} requests in flight; try again when one ends.",
            code="key_in_flight",
            details={"limit": limit, "used": used, "reset_at": None},
            retry_after=1,
        )
    what = {
        "key_budget_daily": "This API key's spend limit for the day",
        "key_budget_monthly": "This API key's spend limit for the month",
        "license_budget_monthly": "The license's AI budget for the month",
        "key_tokens_per_minute": "This API key's tokens per minute",
    }[counter.code]
    if counter.in_usd:
        details = {
            "limit": str(nanos_to_usd(counter.limit)),
            "used": str(nanos_to_usd(used)),
            "requested": str(nanos_to_usd(counter.amount)),
            "currency": "USD",
        }
    else:
        details = {"limit": counter.limit, "used": used, "requested": counter.amount}
    details["reset_at"] = counter.reset_at.isoformat()
    return LimitExceeded(
        f"{what} would be exceeded by this call.",
        code=counter.code,
        details=details,
        retry_after=_seconds_until(counter.reset_at, now),
    )


def _seed_license_month(client, counter: _Counter, now: datetime) -> None:
    """Start a license's month counter from the month's cost in PostgreSQL (unless another
    process started it first)."""
    start, end = usage_period(now.date())
    spent = LicenseUsageLog.objects.filter(license_id=counter.seed_from, period_start=start, period_end=end).aggregate(
        cost=Sum("calculated_cost")
    )["cost"] or Decimal("0")
    client.set(counter.key, usd_to_nanos(spent, rounding=ROUND_CEILING), nx=True, ex=counter.ttl)


def budget_reserve(
    *, api_key: UserApiKey, license: License, model: str, max_cost_usd: Decimal, estimated_tokens: int, call_id
) -> BudgetReservation | None:
    """Reserve a call's worst case before any provider is called: ``max_cost_usd`` against the
    key's day and month and the license's month, ``estimated_tokens`` against the key's tokens
    per minute, one of the key's requests in flight. All or nothing, in one Redis round trip.

    Raises ``LimitExceeded`` (429) whose code names the first limit that refuses
    (``key_budget_daily``, ``key_budget_monthly``, ``license_budget_monthly``,
    ``key_tokens_per_minute``, ``key_in_flight``) with ``details`` (limit, used, requested,
    reset_at) and ``retry_after``; ``Forbidden`` (403 ``model_not_allowed``) for a model the key
    may not call. Reserving the same ``call_id`` again reserves nothing more. Returns None when
    there is no Redis and neither the key nor the license has a limit (nothing to settle)."""
    budget_check_model(api_key, model)
    if max_cost_usd < 0 or estimated_tokens < 0:
        raise ValueError("A call's worst-case cost and tokens cannot be negative.")
    license_budget = license_budget_usd(license)
    client = redis_client()
    if client is None:
        if _has_limits(api_key, license_budget):
            raise BudgetsUnavailable()
        return None
    now = timezone.now()
    call_id = str(call_id)
    cost_nanos = usd_to_nanos(max_cost_usd, rounding=ROUND_CEILING)
    counters = _counters(
        api_key=api_key,
        license=license,
        license_budget=license_budget,
        cost_nanos=cost_nanos,
        tokens=estimated_tokens,
        now=now,
    )
    deadline = now + timedelta(seconds=settings.AI_BUDGET_RESERVATION_TTL_SECONDS)
    in_flight_key = key_in_flight_set(api_key.pk)
    record = {"c": {counter.key: str(counter.amount) for counter in counters}, "f": in_flight_key}
    keys = [PENDING, PENDING_RECORDS, _done_key(call_id), in_flight_key, *(counter.key for counter in counters)]
    in_flight_limit = api_key.max_requests_in_flight
    args = [
        _now_ms(now),
        _now_ms(deadline),
        call_id,
        json.dumps(record),
        -1 if in_flight_limit is None else in_flight_limit,
        settings.AI_BUDGET_RESERVATION_TTL_SECONDS + 60,
    ]
    for counter in counters:
        limit = -1 if counter.limit is None else counter.limit
        args += [counter.amount, limit, counter.ttl, "1" if counter.seed_from else "0"]
    outcome = _scripts()["reserve"](keys=keys, args=args, client=client)
    if outcome[0] == b"SEED":
        _seed_license_month(client, counters[int(outcome[1]) - 1], now)
        outcome = _scripts()["reserve"](keys=keys, args=args, client=client)
        if outcome[0] == b"SEED":  # gone again at once (Redis flushed meanwhile): count nothing blind
            raise BudgetsUnavailable("The spend counters could not be read just now; try again shortly.")
    if outcome[0] == b"REFUSED":
        index = int(outcome[1])
        counter = counters[index - 1] if index else None
        raise _refusal(counter, api_key=api_key, used=int(outcome[2]), now=now)
    return BudgetReservation(
        call_id=call_id,
        counter_keys=tuple(counter.key for counter in counters),
        cost_nanos=cost_nanos,
        tokens=estimated_tokens,
        in_flight_key=in_flight_key,
        deadline=deadline,
        used={counter.code: int(value) for counter, value in zip(counters, outcome[1:], strict=False)},
    )


def _settle(reservation: BudgetReservation, *, cost_nanos: int, tokens: int) -> bool:
    done = _done_key(reservation.call_id)
    keys = [PENDING, PENDING_RECORDS, done, reservation.in_flight_key, *reservation.counter_keys]
    args = [reservation.call_id, _DONE_SECONDS, cost_nanos, cost_nanos, cost_nanos, tokens]
    return bool(_scripts()["settle"](keys=keys, args=args, client=redis_client()))


def budget_settle(reservation: BudgetReservation | None, *, cost_usd: Decimal, tokens: int) -> bool:
    """Replace the reservation by what the call really spent (``cost_usd``, ``tokens`` in and
    out) and free its slot in flight, in one round trip. Returns False when it was settled or
    released before (nothing changes). A cost above the reservation is counted all the same."""
    if reservation is None:
        return False
    return _settle(reservation, cost_nanos=usd_to_nanos(cost_usd), tokens=tokens)


def budget_release(reservation: BudgetReservation | None) -> bool:
    """Give the whole reservation back (the call failed before any provider answered)."""
    if reservation is None:
        return False
    return _settle(reservation, cost_nanos=0, tokens=0)


def budget_renew(reservation: BudgetReservation | None) -> bool:
    """Push the reservation's deadline ``AI_BUDGET_RESERVATION_TTL_SECONDS`` from now (a long
    stream, at the pace the task's claim is renewed). False when it is no longer held."""
    if reservation is None:
        return False
    deadline = timezone.now() + timedelta(seconds=settings.AI_BUDGET_RESERVATION_TTL_SECONDS)
    keys = [PENDING, PENDING_RECORDS, reservation.in_flight_key]
    return bool(_scripts()["renew"](keys=keys, args=[reservation.call_id, _now_ms(deadline)], client=redis_client()))


# -- what is left, for the answer's headers -------------------------------------------------------


@dataclass(frozen=True)
class BudgetUsage:
    """What a key and its license have used in their current windows (USD as Decimal)."""

    key_day_usd: Decimal
    key_month_usd: Decimal
    license_month_usd: Decimal
    key_minute_tokens: int
    license_month_requests: int | None
    license_month_tokens: int | None


def budget_usage(*, api_key: UserApiKey, license: License) -> BudgetUsage | None:
    """The current use of the key's and license's windows (expired reservations given back
    first), in one round trip; None without Redis."""
    client = redis_client()
    if client is None:
        return None
    now = timezone.now()
    keys = [
        PENDING,
        PENDING_RECORDS,
        key_day_counter(api_key.pk, now.date()),
        key_month_counter(api_key.pk, now.date()),
        license_month_counter(license.pk, now.date()),
        key_minute_counter(api_key.pk, now),
        # licensing.meter's hash of the license's month (requests ``r``, tokens ``t``): read only
        f"meter:{license.pk}:{usage_period(now.date())[0].isoformat()}",
    ]
    day, month, license_month, minute, requests, tokens = _scripts()["read"](
        keys=keys, args=[_now_ms(now)], client=client
    )

    def number(raw) -> int:
        return int(raw) if raw else 0

    return BudgetUsage(
        key_day_usd=nanos_to_usd(number(day)),
        key_month_usd=nanos_to_usd(number(month)),
        license_month_usd=nanos_to_usd(number(license_month)),
        key_minute_tokens=number(minute),
        license_month_requests=int(requests) if requests is not None else None,
        license_month_tokens=int(tokens) if tokens is not None else None,
    )


def _duration(seconds: float) -> str:
    """OpenAI's reset format: ``20ms``, ``59s``, ``6m0s``, ``1h2m3s``."""
    if seconds < 1:
        return f"{max(int(seconds * 1000), 0)}ms"
    whole = math.ceil(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def rate_limit_headers(
    *, api_key: UserApiKey, license: License, month: MonthUsage | None, budget: BudgetReservation | None
) -> dict[str, str]:
    """OpenAI's ``x-ratelimit-*`` headers for an answer, from what reserving the call counted (no
    round trip of their own; none without Redis): requests are the license's monthly AI requests
    (``month``, as ``license_usage_reserve`` counted them); tokens the key's tokens per minute
    when it has that limit (``budget``), else the license's monthly tokens. A kind with no limit
    has no headers. Both include the call."""
    if month is None:
        return {}
    limits = license_effective_limits(license=license)
    now = timezone.now()
    month_reset = _duration((_month_end(now) - now).total_seconds())
    headers = {}
    request_limit = limits.get("ai_requests_per_month")
    if request_limit is not None:
        headers["x-ratelimit-limit-requests"] = str(request_limit)
        headers["x-ratelimit-remaining-requests"] = str(max(int(request_limit) - month.requests, 0))
        headers["x-ratelimit-reset-requests"] = month_reset
    minute_tokens = budget.used.get("key_tokens_per_minute") if budget is not None else None
    if api_key.tokens_per_minute is not None and minute_tokens is not None:
        token_limit, used, reset = api_key.tokens_per_minute, minute_tokens, (_minute_end(now) - now)
        headers["x-ratelimit-reset-tokens"] = _duration(reset.total_seconds())
    elif limits.get("tokens_per_month") is not None:
        token_limit, used = int(limits["tokens_per_month"]), month.tokens
        headers["x-ratelimit-reset-tokens"] = month_reset
    else:
        return headers
    headers["x-ratelimit-limit-tokens"] = str(token_limit)
    headers["x-ratelimit-remaining-tokens"] = str(max(token_limit - used, 0))
    return headers
