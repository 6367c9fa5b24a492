"""Fixed-window rate limiting on the shared cache (Redis in production, so every process agrees)."""

import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import redis
from django.conf import settings
from django.core.cache import cache
from django.core.signals import setting_changed
from django.dispatch import receiver


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


def rate_limits_hit_fetching(
    *, hits: list[tuple[str, int]], window_seconds: int = 60, fetch: Sequence[str] = ()
) -> tuple[RateDecision, list[bytes | None]]:
    """``rate_limits_hit``, also reading the raw Redis keys ``fetch`` in the same round trip, so
    that a hot endpoint gets its limits and its cached data at once. Without a Redis cache the
    fetched values are all None (nothing is cached there)."""
    client = redis_cache_client()
    if client is None:
        decisions = [_cache_hit(key=key, limit=limit, window_seconds=window_seconds) for key, limit in hits]
        fetched: list[bytes | None] = [None] * len(fetch)
    else:
        now = int(time.time())
        window = now // window_seconds
        ttl = window_seconds - (now % window_seconds)
        buckets = [cache.make_key(f"rl:{key}:{window}") for key, _ in hits]
        results = _hits_script()(keys=[*buckets, *fetch], args=[len(buckets), ttl + 1], client=client)
        counts, fetched = results[: len(hits)], results[len(hits) :]
        decisions = [
            RateDecision(allowed=count <= limit, remaining=max(limit - count, 0), retry_after=max(ttl, 1))
            for count, (_, limit) in zip(counts, hits, strict=True)
        ]
    refused = [decision for decision in decisions if not decision.allowed]
    if refused:
        return max(refused, key=lambda decision: decision.retry_after), fetched
    return min(decisions, key=lambda decision: decision.remaining), fetched


@lru_cache(maxsize=1)
def redis_cache_client() -> redis.Redis | None:
    """A raw client of the Redis cache's server (one per process), or None on another backend."""
    config = settings.CACHES["default"]
    if not config["BACKEND"].endswith("RedisCache"):
        return None
    location = config["LOCATION"]
    return redis.Redis.from_url(location[0] if isinstance(location, list | tuple) else location)


# KEYS: the counters, then the keys to read; ARGV: how many counters, their time to live.
_HITS_LUA = """
local counters, out = tonumber(ARGV[1]), {}
for i = 1, counters do
  out[i] = redis.call('INCR', KEYS[i])
  if out[i] == 1 then redis.call('EXPIRE', KEYS[i], ARGV[2]) end
end
for i = counters + 1, #KEYS do out[i] = redis.call('GET', KEYS[i]) end
return out
"""


@lru_cache(maxsize=1)
def _hits_script():
    return redis_cache_client().register_script(_HITS_LUA)


@receiver(setting_changed)
def _reset_client(*, setting, **kwargs):
    if setting == "CACHES":
        redis_cache_client.cache_clear()
        _hits_script.cache_clear()
