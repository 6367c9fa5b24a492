"""Health endpoints for load balancers.

``/health/live``: the process answers (no I/O at all). ``/health/ready``: the database, the cache,
the broker and a recent Celery worker heartbeat all answer; 503 with the failing checks otherwise.
"""

import time

from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from celaest.celery import HEARTBEAT_CACHE_KEY, app

HEARTBEAT_MAX_AGE_SECONDS = 180


@never_cache
@require_GET
def live(request):
    return JsonResponse({"status": "ok"})


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _check_cache() -> None:
    cache.set("health:probe", 1, timeout=10)
    if cache.get("health:probe") != 1:
        raise RuntimeError("cache did not return what was stored")


def _check_broker() -> None:
    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)


def _check_worker() -> None:
    beat = cache.get(HEARTBEAT_CACHE_KEY)
    if beat is None:
        raise RuntimeError("no Celery worker heartbeat recorded")
    age = time.time() - float(beat)
    if age > HEARTBEAT_MAX_AGE_SECONDS:
        raise RuntimeError(f"last Celery worker heartbeat {int(age)} s ago")


_CHECKS = {"database": _check_database, "cache": _check_cache, "broker": _check_broker, "worker": _check_worker}


@never_cache
@require_GET
def ready(request):
    results, healthy = {}, True
    for name, check in _CHECKS.items():
        try:
            check()
            results[name] = "ok"
        except Exception as exc:  # noqa: BLE001 - any failure makes the instance not ready
            results[name] = f"error: {exc}"[:200]
            healthy = False
    body = {"status": "ok" if healthy else "unavailable", "checks": results}
    return JsonResponse(body, status=200 if healthy else 503)
