"""Periodic jobs: one run at a time, and a record of every run.

Every Celery task of CELAEST uses ``CelaestTask``. For tasks that appear in the beat schedule it
takes a lock in the shared cache (an atomic ``SET NX`` in Redis) before running, so two beats —
or a beat and an operator — never run the same job at once. The last run of each job (time,
outcome, duration) is kept in the cache for the staff dashboard; a failure is also told to the
job-failure observers (``celaest.hooks``: audit records a ``job.failed`` system event), so failures
stay on record while frequent successes add no rows.
"""

import logging
import time
from functools import lru_cache

from celery import Task
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from celaest import hooks

logger = logging.getLogger(__name__)
_DEFAULT_LOCK_SECONDS = 3600


@lru_cache(maxsize=1)
def periodic_job_names() -> frozenset[str]:
    return frozenset(entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values())


def _lock_key(name: str) -> str:
    return f"job-lock:{name}"


def _last_run_key(name: str) -> str:
    return f"job-last-run:{name}"


def _record(name: str, outcome: str, **data) -> None:
    try:
        cache.set(_last_run_key(name), {"at": timezone.now().isoformat(), "outcome": outcome, **data}, timeout=None)
        if outcome == "failed":
            for observer in hooks.job_failure_observers:
                observer(name=name, data=data)
    except Exception:  # recording must never turn a finished job into a failed one
        logger.exception("could not record the run of %s", name)


class CelaestTask(Task):
    def __call__(self, *args, **kwargs):
        if self.name not in periodic_job_names():
            return super().__call__(*args, **kwargs)
        lock_seconds = int(self.time_limit or settings.CELERY_TASK_TIME_LIMIT or _DEFAULT_LOCK_SECONDS)
        if not cache.add(_lock_key(self.name), self.request.id or "local", timeout=lock_seconds):
            logger.info("%s is already running; this run is skipped", self.name)
            return None
        started = time.monotonic()
        try:
            result = super().__call__(*args, **kwargs)
        except Exception as exc:
            _record(self.name, "failed", error=str(exc)[:500], duration_ms=int((time.monotonic() - started) * 1000))
            raise
        finally:
            cache.delete(_lock_key(self.name))
        _record(self.name, "succeeded", duration_ms=int((time.monotonic() - started) * 1000))
        return result


def periodic_job_status() -> list[dict]:
    """Each scheduled job with its last run, from the cache (one round trip)."""
    entries = sorted(settings.CELERY_BEAT_SCHEDULE.items())
    last_runs = cache.get_many([_last_run_key(entry["task"]) for _, entry in entries])
    rows = []
    for key, entry in entries:
        last = last_runs.get(_last_run_key(entry["task"])) or {}
        rows.append(
            {
                "key": key,
                "task": entry["task"],
                "schedule": str(entry["schedule"]),
                "last_run_at": last.get("at"),
                "outcome": last.get("outcome", "never run"),
                "duration_ms": last.get("duration_ms"),
            }
        )
    return rows
