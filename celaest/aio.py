"""The short synchronous steps of coroutine views (the ORM, Redis) and where they run.

On an ASGI server's event loop (``celaest.asgi`` marks it when its lifespan starts) a step runs
on a small pool of threads (``AI_DB_THREADS``), each with its own database connection, so that
the steps of concurrent requests overlap and a request waiting on a provider holds neither.
Anywhere else (Django's test client or a WSGI server running the coroutine on a loop of its own,
a Celery job through ``async_to_sync``) the caller's thread is blocked anyway: the step goes back
to it, on its database connection and inside its transaction, as ``sync_to_async`` does.
"""

import asyncio
import contextlib
import contextvars
import functools
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connections

_serving_loops: "weakref.WeakSet[asyncio.AbstractEventLoop]" = weakref.WeakSet()
_pool: ThreadPoolExecutor | None = None


def serving_loop_mark() -> None:
    """This event loop serves many requests (an ASGI server's)."""
    _serving_loops.add(asyncio.get_running_loop())


def is_serving_loop() -> bool:
    return asyncio.get_running_loop() in _serving_loops


def _executor() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=settings.AI_DB_THREADS, thread_name_prefix="sync-step")
    return _pool


def sync_steps_stop() -> None:
    """Close the pool's database connections and end its threads (the server is stopping)."""
    global _pool
    pool, _pool = _pool, None
    if pool is None:
        return
    # One closing call per thread: each waits for the others, so no thread takes two.
    together = threading.Barrier(pool._max_workers)

    def close():
        with contextlib.suppress(threading.BrokenBarrierError):
            together.wait(timeout=5)
        connections.close_all()

    for _ in range(pool._max_workers):
        pool.submit(close)
    pool.shutdown(wait=True)


def _pooled(function, *args, **kwargs):
    try:
        return function(*args, **kwargs)
    finally:
        # As Django does at the end of a request: a connection older than CONN_MAX_AGE (every one
        # when it is 0), or one the server dropped, is not reused by this thread's next step.
        for connection in connections.all(initialized_only=True):
            connection.close_if_unusable_or_obsolete()


def sync_step(function):
    """``function`` as a coroutine function: one short synchronous step of an async view."""

    @functools.wraps(function)
    async def step(*args, **kwargs):
        if is_serving_loop():
            # The pool directly, in a copy of this context (the request's): asgiref's
            # sync_to_async does more per call (context restore, thread-local re-homing), which
            # the pool's self-contained steps do not need.
            call = functools.partial(_pooled, function, *args, **kwargs)
            return await asyncio.get_running_loop().run_in_executor(_executor(), contextvars.copy_context().run, call)
        return await sync_to_async(function)(*args, **kwargs)

    return step
