"""Use counts kept in the shared cache and written to the database in batches.

An API key or a pooled provider key is used on every request; an UPDATE of its ``usage_count``
each time would cost a statement and a commit per request. Instead a use is one INCR in the
shared cache (Redis): the first use in each interval is told to write (``use_counted`` returns
True) and a periodic job writes the rest. Taking the pending count is atomic (a DECRBY of what
was read), so uses counted meanwhile stay for the next write: none is lost or counted twice.
"""

from django.core.cache import cache

from celaest.redis import cache_key, redis_cache_client

#: a counter's uses are written by its first use in each interval this long (and by a periodic job)
WRITE_EVERY_SECONDS = 60


def use_counted(counter: str) -> bool:
    """Count one use under ``counter``; True for the first use of each ``WRITE_EVERY_SECONDS``
    (the caller then writes the pending uses with ``uses_taken``)."""
    claim = f"{counter}:written"
    client = redis_cache_client()
    if client is not None:  # one round trip: count, and claim this interval's write
        pipe = client.pipeline(transaction=False)
        pipe.incr(cache_key(counter))
        pipe.set(cache_key(claim), 1, nx=True, ex=WRITE_EVERY_SECONDS)
        return bool(pipe.execute()[1])
    if not cache.add(counter, 1, timeout=None):
        try:
            cache.incr(counter)
        except ValueError:  # the counter vanished between add and incr (taken, or just written)
            cache.add(counter, 1, timeout=None)
    return cache.add(claim, 1, timeout=WRITE_EVERY_SECONDS)


def uses_taken(counter: str) -> int:
    """Take the uses counted under ``counter`` so far (to add them to the database)."""
    pending = cache.get(counter) or 0
    if pending:
        cache.decr(counter, pending)  # atomic: uses counted meanwhile stay in the cache
    return pending
