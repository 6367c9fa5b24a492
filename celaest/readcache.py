"""Per-process copies of rows read on every request and rarely changed, retired by a generation.

A hot request reads the same few rows again and again (its API key and user, the AI model, the
organization's license, the key pool, the webhooks an event goes to). Each ``ReadCache`` keeps
this process's copies of one kind of row, tagged with the generation they were read under; the
generation lives in the shared cache (Redis), so a copy is used only while nobody has changed
those rows since. Reading the generation is one cache round trip instead of a query.

Every change retires every process's copies, and no writer has to remember to say so: the write
paths announce. ``post_save``/``post_delete`` for instances (a queryset's ``delete()`` sends them
row by row once anyone listens), and ``ChangeAnnouncingQuerySet`` for ``update()``,
``bulk_update()`` (which runs through ``update()``) and ``bulk_create()``. Whoever keeps copies
subscribes with ``on_change(Model, callback)`` (``ReadCache.watch`` does, and so do the license
snapshots), which refuses a model whose managers do not announce. Writes behind the ORM's back
(raw SQL) call ``rows_changed(Model)``.

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
from collections.abc import Callable, Hashable, Iterable
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, models, transaction
from django.db.models.signals import post_delete, post_save

# --- writes that announce themselves ---------------------------------------------------------------


@dataclass(frozen=True)
class RowsChanged:
    """What a write changed: ``fields`` (None: any, as for a new or deleted row), the primary keys
    (None: unknown, any row may have changed) and the instances when the write had them."""

    model: type
    fields: frozenset | None
    pks: tuple | None
    instances: tuple = ()


@dataclass(frozen=True)
class _Subscription:
    callback: Callable[[RowsChanged], None]
    unseen_fields: frozenset
    wants_rows: bool

    def sees(self, fields: frozenset | None) -> bool:
        return fields is None or not fields <= self.unseen_fields


_subscriptions: dict[type, list[_Subscription]] = {}


def on_change(
    model: type | str,
    callback: Callable[[RowsChanged], None],
    *,
    unseen_fields: Iterable[str] = (),
    wants_rows: bool = False,
) -> None:
    """Call ``callback(RowsChanged)`` after every write to ``model`` (a class, or ``"app.Model"``
    for a module that cannot import models when it loads), in the writer's transaction. Writes
    that touch only ``unseen_fields`` are not announced to it (a use count on a hot path);
    ``wants_rows`` makes a queryset ``update()`` read the primary keys it is about to change."""
    subscription = _Subscription(callback, frozenset(unseen_fields), wants_rows)
    if isinstance(model, str):
        apps.lazy_model_operation(lambda resolved: _subscribe(resolved, subscription), tuple(model.lower().split(".")))
    else:
        _subscribe(model, subscription)


def _subscribe(model: type, subscription: _Subscription) -> None:
    model = model._meta.concrete_model
    silent = [
        manager.name
        for manager in model._meta.managers
        if not issubclass(getattr(manager, "_queryset_class", models.QuerySet), ChangeAnnouncingQuerySet)
    ]
    if silent:
        raise ImproperlyConfigured(
            f"{model.__name__}'s managers {silent} do not announce their writes: "
            "build them on ChangeAnnouncingQuerySet."
        )
    if model not in _subscriptions:
        _subscriptions[model] = []
        post_save.connect(_instance_saved, sender=model, weak=False)
        post_delete.connect(_instance_deleted, sender=model, weak=False)
    _subscriptions[model].append(subscription)


def subscribed_models() -> list[type]:
    """Every model whose writes someone listens to (tests discover the caches through it)."""
    return list(_subscriptions)


def _announce(change: RowsChanged, subscriptions: Iterable[_Subscription]) -> None:
    for subscription in subscriptions:
        subscription.callback(change)


def _listening(model: type, fields: frozenset | None) -> list[_Subscription]:
    return [item for item in _subscriptions.get(model._meta.concrete_model, ()) if item.sees(fields)]


def _instance_saved(sender, instance, created=False, update_fields=None, **kwargs) -> None:
    fields = None if created or update_fields is None else frozenset(update_fields)
    listening = _listening(sender, fields)
    if listening:
        _announce(RowsChanged(sender._meta.concrete_model, fields, (instance.pk,), (instance,)), listening)


def _instance_deleted(sender, instance, **kwargs) -> None:
    _announce(RowsChanged(sender._meta.concrete_model, None, (instance.pk,), (instance,)), _listening(sender, None))


def rows_changed(model: type) -> None:
    """Rows of ``model`` changed behind the ORM's back (raw SQL): retire every copy of them."""
    _announce(RowsChanged(model._meta.concrete_model, None, None), _listening(model, None))


class ChangeAnnouncingQuerySet(models.QuerySet):
    """A queryset whose bulk writes tell ``on_change`` subscribers what they changed."""

    def update(self, **kwargs):
        listening = _listening(self.model, frozenset(kwargs))
        if not listening:  # nobody keeps copies of these fields: no cost on hot counters
            return super().update(**kwargs)
        pks = tuple(self.values_list("pk", flat=True)) if any(item.wants_rows for item in listening) else None
        updated = super().update(**kwargs)
        if updated:
            _announce(RowsChanged(self.model._meta.concrete_model, frozenset(kwargs), pks), listening)
        return updated

    update.alters_data = True

    def bulk_create(self, objs, *args, **kwargs):
        created = super().bulk_create(objs, *args, **kwargs)
        listening = _listening(self.model, None)
        if created and listening:
            pks = tuple(obj.pk for obj in created)
            _announce(RowsChanged(self.model._meta.concrete_model, None, pks, tuple(created)), listening)
        return created

    bulk_create.alters_data = True


ChangeAnnouncingManager = models.Manager.from_queryset(ChangeAnnouncingQuerySet)


# --- copies retired by a generation ----------------------------------------------------------------

_registry: dict[str, "ReadCache"] = {}
_generations_read: ContextVar[dict | None] = ContextVar("readcache_generations", default=None)


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
        self.watched: list = []  # the models (or "app.Model" labels) whose writes retire it

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

    def watch(self, *models, unseen_fields=()) -> "ReadCache":
        """Retire the copies whenever rows of ``models`` (classes, or ``"app.Model"`` labels) are
        written, except by writes that touch only ``unseen_fields`` (copies that do not rely on a
        use count need not go when it moves)."""
        for model in models:
            on_change(model, self._rows_changed, unseen_fields=unseen_fields)
            self.watched.append(model)
        return self

    def _rows_changed(self, change) -> None:
        self.changed()


def registered_caches() -> list[ReadCache]:
    """Every read cache of the process (tests discover them, and what they watch, through it)."""
    return list(_registry.values())


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
