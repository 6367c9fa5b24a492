"""The Celery application. Configuration comes from Django settings (``CELERY_*``)."""

import os
from pathlib import Path

from celery import Celery
from celery.signals import beat_init, celeryd_init

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


@app.task(name="celaest.worker_heartbeat", ignore_result=True, time_limit=30, soft_time_limit=20)
def worker_heartbeat() -> None:
    """Run by beat every 30 s: a worker that executes it proves the queue is being consumed."""
    from celaest.health import record_worker_heartbeat

    record_worker_heartbeat()
