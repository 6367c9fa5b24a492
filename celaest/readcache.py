"""Per-process copies of rows read on every request and rarely changed, retired by a generation.

A hot request reads the same few rows again and again (its API key and user, the AI model, the
organization's license, the key pool, the webhooks an event goes to). Each ``ReadCache`` keeps
this process's copies of one kind of row, tagged with the generation they were read under; the
generation lives in the shared cache (Redis), so a copy is used only while nobody has changed
those rows since. Reading the generation is one cache round trip instead of a query.

Every change retires every process's copies:

- ``watch(Model, ...)`` connects ``post_save``/``post_delete`` of those models;
- writes that bypass the signals (``QuerySet.update()``) call ``rows_changed(Model)``, or the
  cache's ``changed()``, in the transaction that makes them.

``changed()`` forgets this process's copies at once and moves the shared generation after
commit. A copy is tagged with the generation read *before* its rows were, so a copy read while
a change was committing is retired by that change's bump. The new generation is random, so a
cache that lost its keys (flushed, restarted) never revives an old copy. Copies are made only
outside transactions: a transaction may read its own uncommitted (and perhaps rolled back) rows.

A request that reads several caches reads their generations in one round trip
(``generations_read_at_once``). Copies are shared by the process's threads: treat them as
read-only. ``check_seconds`` lets a cache trust its generation for that long without asking
(system config, flags); the default, 0, asks on every read, so a revoked API key stops working
on the next request.
"""

import secrets
import threading
import time
from collections.abc import Callable, Hashable
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.core.cache import cache
from django.db import connection, transaction
from django.db.models.signals import post_delete, post_save

_registry: dict[str, "ReadCache"] = {}
_generations_read: ContextVar[dict | None] = ContextVar("readcache_generations", default=None)
_watchers: dict[type, list["ReadCache"]] = {}


class ReadCache:
    def __init__(self, name: str, *, check_seconds: float = 0.0, max_entries: int = 10_000):
        if name in _registry:
            raise ValueError(f"A read cache named {name!r} exists already.")
        _registry[name] = self
        self.name = name
        self.generation_key = f"readcache-generation:{name}"
        self.check_seconds = check_seconds
        self._changing = threading.local()  # .active: this thread's open transaction changed the rows
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._copies: dict[Hashable, tuple[Any, Any]] = {}
        self._generation = None
        self._checked_at = 0.0

    # -- reading -----------------------------------------------------------------------------------

    def _shared_generation(self):
        read_at_once = _generations_read.get()
        if read_at_once is not None and read_at_once.get(self.generation_key) is not None:
            generation = read_at_once[self.generation_key]
        elif self.check_seconds and time.monotonic() - self._checked_at < self.check_seconds:
            return self._generation
        else:
            generation = cache.get(self.generation_key)
        if generation is None:  # first use, or the cache lost it: a fresh generation nobody holds
            cache.add(self.generation_key, secrets.token_hex(8), timeout=None)
            generation = cache.get(self.generation_key)
        with self._lock:
            if generation != self._generation:
                self._copies.clear()
                self._generation = generation
            self._checked_at = time.monotonic()
        return generation

    def get(self, key: Hashable, load: Callable[[], Any]) -> Any:
        """This process's copy of ``key`` while it is current, else ``load()`` (kept unless it is
        None: a miss, such as an unknown API key, is asked of the database every time)."""
        if connection.in_atomic_block:
            if getattr(self._changing, "active", False):
                return load()
        else:
            self._changing.active = False  # its transaction ended: committed (and bumped) or rolled back
        generation = self._shared_generation()
        found = self._copies.get(key)
        if found is not None and found[0] == generation:
            return found[1]
        value = load()
        if value is None:
            return value
        with self._lock:
            if generation == self._generation:
                if len(self._copies) >= self.max_entries:
                    self._copies.clear()
                self._copies[key] = (generation, value)
        return value

    # -- retiring ----------------------------------------------------------------------------------

    def forget(self) -> None:
        """Drop this process's copies (the next read loads them again)."""
        with self._lock:
            self._copies.clear()
            self._generation = None
            self._checked_at = 0.0

    def changed(self) -> None:
        """Call in the transaction that changes the rows, after the change: every process's
        copies are retired once it commits (this process's at once)."""
        self.forget()
        if connection.in_atomic_block:
            self._changing.active = True

        def bump():
            cache.set(self.generation_key, secrets.token_hex(8), timeout=None)
            self.forget()
            self._changing.active = False

        transaction.on_commit(bump)

    def watch(self, *models) -> "ReadCache":
        """Retire the copies whenever a row of ``models`` is saved or deleted."""
        for model in models:
            if model not in _watchers:
                _watchers[model] = []
                post_save.connect(_model_changed, sender=model, weak=False)
                post_delete.connect(_model_changed, sender=model, weak=False)
            _watchers[model].append(self)
        return self


def _model_changed(sender, **kwargs) -> None:
    rows_changed(sender)


def rows_changed(model) -> None:
    """Rows of ``model`` changed without a signal (``QuerySet.update()``): retire the copies
    that watch it."""
    for read_cache in _watchers.get(model, ()):
        read_cache.changed()


@contextmanager
def generations_read_at_once():
    """Within the block (a request), caches use the generations read at its start, all in one
    round trip: the block sees rows as of its start or later."""
    found = cache.get_many([read_cache.generation_key for read_cache in _registry.values()])
    token = _generations_read.set(found)
    try:
        yield
    finally:
        _generations_read.reset(token)


def forget_process_copies() -> None:
    """Drop every cache's copies in this process (tests: rolled-back rows never bump a generation)."""
    for read_cache in _registry.values():
        read_cache.forget()
