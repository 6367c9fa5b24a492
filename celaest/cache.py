"""Django's Redis cache, keeping one connection pool and one client per server and process.

Django's ``RedisCacheClient.get_client`` builds a new ``redis.Redis`` for every cache call, and
each one copies redis-py's table of response callbacks (some 170 entries): a tenth of a
millisecond per call on hot paths that make several. A client is thread-safe and holds no
connection of its own (it borrows from the pool per command), so one per pool serves all threads.

Django also keeps a cache object, and so its pools, per thread or per asyncio task: under ASGI
each request is a task, so every request opened a new Redis connection (5 ms of CPU, most of it
redis-py reading its own package metadata for the connection's client info). The pools and
clients live here instead, one per server URL and options, shared by the process (redis-py's
pools are thread-safe and start afresh in a forked child).
"""

import threading

from django.core.cache.backends.redis import RedisCache, RedisCacheClient

_shared: dict = {}
_shared_lock = threading.Lock()


class ReusedClientRedisCacheClient(RedisCacheClient):
    def _shared(self, write: bool) -> tuple:
        """(pool, client) of the server a command goes to."""
        url = self._servers[self._get_connection_pool_index(write)]
        name = (url, repr(sorted(self._pool_options.items())))
        found = _shared.get(name)
        if found is None:
            with _shared_lock:
                found = _shared.get(name)
                if found is None:
                    pool = self._pool_class.from_url(url, **self._pool_options)
                    found = _shared[name] = (pool, self._client(connection_pool=pool))
        return found

    def _get_connection_pool(self, write):
        return self._shared(write)[0]

    def get_client(self, key=None, *, write=False):
        return self._shared(write)[1]


class ReusedClientRedisCache(RedisCache):
    """``django.core.cache.backends.redis.RedisCache`` with ``ReusedClientRedisCacheClient``."""

    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = ReusedClientRedisCacheClient
