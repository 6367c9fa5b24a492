"""Fixed-window rate limiting on the shared cache (Redis in production, so every process agrees)."""

import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from django.core.cache import cache

from celaest.redis import cache_key, redis_cache_client, reset_with_client


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    remaining: int
    retry_after: int  # seconds until the window resets


def rate_limit_hit(*, key: str, limit: int, window_seconds: int = 60) -> RateDecision:
    """Count one hit against ``key`` and say whether it fits within ``limit`` per window.
    Counters are atomic in Redis, so concurrent requests in different processes cannot overshoot
    the limit."""
    return rate_limits_hit(hits=[(key, limit)], window_seconds=window_seconds)


def _cache_hit(*, key: str, limit: int, window_seconds: int) -> RateDecision:
    """One counter on a cache that is not Redis: created with ``add``, bumped with ``incr``."""
    now = int(time.time())
    window = now // window_seconds
    bucket = f"rl:{key}:{window}"
    ttl = window_seconds - (now % window_seconds)
    if cache.add(bucket, 1, timeout=ttl + 1):
        count = 1
    else:
        try:
            count = cache.incr(bucket)
        except ValueError:  # expired between add and incr
            cache.add(bucket, 1, timeout=ttl + 1)
            count = 1
    return RateDecision(allowed=count <= limit, remaining=max(limit - count, 0), retry_after=max(ttl, 1))


def rate_limits_hit(*, hits: list[tuple[str, int]], window_seconds: int = 60) -> RateDecision:
    """Count one hit against each ``(key, limit)`` at once; the decision of the most constrained.

    On Redis all counters move in one script call, one round trip (hot public endpoints check
    several limits per request); the counters are the same ones ``rate_limit_hit`` uses.
    """
    return rate_limits_hit_fetching(hits=hits, window_seconds=window_seconds)[0]


@dataclass(frozen=True)
class GuardedPush:
    """Append ``value`` to the list ``key`` in the limits' round trip, only when the request is
    allowed and the last ``guard_reads`` fetched values, joined with ``:``, equal ``guard``."""

    key: str
    value: str
    guard: str
    guard_reads: int


def rate_limits_hit_fetching(
    *,
    hits: list[tuple[str, int]],
    window_seconds: int = 60,
    fetch: Sequence[str] = (),
    push: GuardedPush | None = None,
) -> tuple[RateDecision, list[bytes | None], int]:
    """``rate_limits_hit``, also reading the raw Redis keys ``fetch`` in the same round trip, so
    that a hot endpoint gets its limits and its cached data at once, and making ``push`` when its
    guard holds. Returns the decision, the values read and the list's length after the push (0
    when it was not made). Without a Redis cache the values are all None and nothing is pushed."""
    client = redis_cache_client()
    pushed = 0
    if client is None:
        decisions = [_cache_hit(key=key, limit=limit, window_seconds=window_seconds) for key, limit in hits]
        fetched: list[bytes | None] = [None] * len(fetch)
    else:
        now = int(time.time())
        window = now // window_seconds
        ttl = window_seconds - (now % window_seconds)
        keys = [cache_key(f"rl:{key}:{window}") for key, _ in hits] + list(fetch)
        args = [len(hits), ttl + 1, *(limit for _, limit in hits)]
        if push is not None:
            keys.append(push.key)
            args += [push.guard_reads, push.guard, push.value]
        results = _hits_script()(keys=keys, args=args, client=client)
        counts, fetched = results[: len(hits)], results[len(hits) : len(hits) + len(fetch)]
        pushed = (results[-1] or 0) if push is not None else 0
        decisions = [
            RateDecision(allowed=count <= limit, remaining=max(limit - count, 0), retry_after=max(ttl, 1))
            for count, (_, limit) in zip(counts, hits, strict=True)
        ]
    refused = [decision for decision in decisions if not decision.allowed]
    if refused:
        return max(refused, key=lambda decision: decision.retry_after), fetched, pushed
    return min(decisions, key=lambda decision: decision.remaining), fetched, pushed


# KEYS: the counters, the keys to read, [the list to push to].
# ARGV: how many counters, their time to live, their limits, [guard reads, guard, value to push].
# The push happens when every counter is within its limit and the guard holds; its result (the
# list's new length, or false) comes last.
_HITS_LUA = """
local counters, out, allowed = tonumber(ARGV[1]), {}, true
for i = 1, counters do
  out[i] = redis.call('INCR', KEYS[i])
  if out[i] == 1 then redis.call('EXPIRE', KEYS[i], ARGV[2]) end
  if out[i] > tonumber(ARGV[2 + i]) then allowed = false end
end
local push_at = 3 + counters
local reads_end = #KEYS
if ARGV[push_at] then reads_end = #KEYS - 1 end
for i = counters + 1, reads_end do out[i] = redis.call('GET', KEYS[i]) end
if ARGV[push_at] then
  local pushed = false
  if allowed then
    local guard = {}
    for i = reads_end - tonumber(ARGV[push_at]) + 1, reads_end do guard[#guard + 1] = out[i] or '' end
    if table.concat(guard, ':') == ARGV[push_at + 1] then
      pushed = redis.call('RPUSH', KEYS[#KEYS], ARGV[push_at + 2])
    end
  end
  out[#out + 1] = pushed
end
return out
"""


@reset_with_client
@lru_cache(maxsize=1)
def _hits_script():
    return redis_cache_client().register_script(_HITS_LUA)


# -- pacing --------------------------------------------------------------------------------------
#
# A per-minute budget spent evenly: the generic cell rate algorithm. A key allowed ``per_minute``
# calls takes one every 60/per_minute seconds, with a burst of one second's worth; a fixed
# window would let twice the budget through around a minute's boundary (1,000 calls in 53 s on
# a 600 a minute pool, bench/aimesh), which a provider answers with 429s. The time is Redis's, so
# every process paces against the same clock.

# KEYS: the key's theoretical arrival time (ms). ARGV: the interval and the burst tolerance (ms).
# Returns 0 when the call is taken, else the milliseconds until it would be.
_PACE_LUA = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local interval, tolerance = tonumber(ARGV[1]), tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
if tat - tolerance > now then return math.max(math.ceil(tat - tolerance - now), 1) end
redis.call('SET', KEYS[1], tat + interval, 'PX', math.ceil(tat + interval - now) + 1000)
return 0
"""


@reset_with_client
@lru_cache(maxsize=1)
def _pace_script():
    return redis_cache_client().register_script(_PACE_LUA)


def pace_hit(*, key: str, per_minute: int) -> float | None:
    """Take one call of ``key``'s ``per_minute`` budget, spent evenly. Returns None when taken,
    else the seconds until a call would be. Without a Redis cache: a fixed window a minute long."""
    client = redis_cache_client()
    if client is None:
        decision = rate_limit_hit(key=key, limit=per_minute)
        return None if decision.allowed else float(decision.retry_after)
    per_minute = max(per_minute, 1)
    interval = 60_000 / per_minute
    tolerance = interval * (max(per_minute // 60, 1) - 1)
    wait = _pace_script()(keys=[cache_key(f"pace:{key}")], args=[interval, tolerance], client=client)
    return None if not wait else wait / 1000
