"""The process's Redis clients and the names of keys in the shared cache, in one place.

``redis_cache_client()`` talks to the server of the Redis cache (``CACHES["default"]``), for the
hot paths that need more than Django's cache API (scripts, pipelines, lists); ``cache_key()``
names a key there as ``cache.make_key`` would. ``redis_client()`` talks to ``REDIS_URL`` (the
validation buffer). Each is made once per process and made again when a test changes the setting
it comes from.
"""

from functools import lru_cache

import redis
from django.conf import settings
from django.core.cache import caches
from django.core.signals import setting_changed
from django.dispatch import receiver


def cache_key(name: str) -> str:
    """``cache.make_key(name)`` without the per-thread lookup behind ``cache`` (4 µs, five times a
    license validation): making a key only reads the cache's settings, the same in every thread."""
    return _make_key()(name)


@lru_cache(maxsize=1)
def _make_key():
    return caches["default"].make_key


@lru_cache(maxsize=1)
def redis_cache_client() -> redis.Redis | None:
    """A raw client of the Redis cache's server (one per process), or None on another backend."""
    config = settings.CACHES["default"]
    if not config["BACKEND"].endswith("RedisCache"):
        return None
    location = config["LOCATION"]
    return redis.Redis.from_url(location[0] if isinstance(location, list | tuple) else location)


@lru_cache(maxsize=1)
def redis_client() -> redis.Redis | None:
    """A client of ``REDIS_URL`` with short timeouts (one per process), or None without Redis."""
    if not settings.REDIS_URL:
        return None
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=1)


#: what else a client was built into (a registered script): cleared with the client
_derived: list = []


def reset_with_client(function):
    """Clear the ``lru_cache``d ``function`` whenever the cache's client is made again."""
    _derived.append(function)
    return function


@receiver(setting_changed)
def _reset_clients(*, setting, **kwargs):
    if setting == "CACHES":
        redis_cache_client.cache_clear()
        _make_key.cache_clear()
        for function in _derived:
            function.cache_clear()
    elif setting == "REDIS_URL":
        redis_client.cache_clear()
