"""The Celery application. Configuration comes from Django settings (``CELERY_*``)."""

import os
import time
from pathlib import Path

from celery import Celery, states
from celery.signals import beat_init, celeryd_init, task_postrun, task_prerun
from django.core.cache import cache
from django.db import close_old_connections, connections

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "celaest.settings")

app = Celery("celaest", task_cls="celaest.jobs:CelaestTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def ensure_broker_folders() -> None:
    """The embedded filesystem broker needs its folders before anything is sent or consumed."""
    from django.conf import settings

    if not settings.CELERY_BROKER_URL.startswith("filesystem://"):
        return
    for option in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
        folder = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get(option)
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)


@celeryd_init.connect
@beat_init.connect
def _prepare_broker(**kwargs):
    ensure_broker_folders()


# Database connections between tasks. Celery's Django fixup would close them around every task
# (``CELERY_DB_REUSE_MAX`` stops that): a new PostgreSQL backend per task cost the validation
# flush, run every 1,000 validations, ~12 ms of database CPU on top of ~70 ms of work. Here a
# worker treats its tasks as Django treats requests: a connection past ``CONN_MAX_AGE``, or broken
# by an error, is closed before and after each task; and a kept one that the database closed
# meanwhile (a restart, an idle timeout) is found before the task starts. After a task that did
# not succeed every connection is closed: a time limit may have interrupted a query and left its
# connection in an unknown state. Tasks run eagerly (in the caller's process) leave the caller's
# connections alone.


def _eager(task) -> bool:
    return task is None or getattr(task.request, "is_eager", False)


@task_prerun.connect
def _connections_before_task(task=None, **kwargs):
    if _eager(task):
        return
    close_old_connections()
    for connection in connections.all(initialized_only=True):
        if connection.connection is not None and not connection.is_usable():
            connection.close()


@task_postrun.connect
def _connections_after_task(task=None, state=None, **kwargs):
    if _eager(task):
        return
    if state == states.SUCCESS:
        close_old_connections()
        return
    for connection in connections.all(initialized_only=True):
        connection.close()


#: when a worker last ran ``worker_heartbeat`` (``/health/ready`` reads it)
HEARTBEAT_CACHE_KEY = "celery:worker-heartbeat"
#: kept well past the age at which ``/health/ready`` calls it stale (180 s)
HEARTBEAT_KEPT_SECONDS = 1800


@app.task(name="celaest.worker_heartbeat", ignore_result=True, time_limit=30, soft_time_limit=20)
def worker_heartbeat() -> None:
    """Run by beat every 30 s: a worker that executes it proves the queue is being consumed."""
    cache.set(HEARTBEAT_CACHE_KEY, time.time(), timeout=HEARTBEAT_KEPT_SECONDS)
