"""Fixed-window rate limiting on the shared cache (Redis in production, so every process agrees)."""

import time
from dataclasses import dataclass

from django.core.cache import cache


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    remaining: int
    retry_after: int  # seconds until the window resets


def rate_limit_hit(*, key: str, limit: int, window_seconds: int = 60) -> RateDecision:
    """Count one hit against ``key`` and say whether it fits within ``limit`` per window.

    The counter is created with ``add`` and bumped with ``incr``, both atomic in Redis, so
    concurrent requests in different processes cannot overshoot the limit.
    """
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
