"""Each task lands in the queue of its kind of work (platform, ai, webhooks, celery), so the
workers of one kind never wait behind another's (README, "Serving in production")."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from django.conf import settings

from celaest.celery import app

ROOT = Path(__file__).resolve().parent.parent

EXPECTED = {
    "settings_app.deliver_webhook": "webhooks",
    "operations.run_task": "ai",
    "operations.run_batch_chunk": "ai",
    "aimesh.probe_unhealthy_keys": "ai",
    "ipcontrol.flush_validations": "platform",
    "ipcontrol.auto_resolve_collisions": "platform",
    "celaest.worker_heartbeat": "platform",
    "settings_app.sweep_webhook_deliveries": "platform",
    "billing.invoice_send": "celery",
    "billing.renew_subscriptions": "celery",
    "billing.renew_subscription_batch": "celery",
    "analytics.aggregate_roi_closing": "celery",
}


def _queue_of(task_name: str) -> str:
    return app.amqp.router.route({}, task_name, (), {})["queue"].name


@pytest.mark.parametrize(("task_name", "queue"), sorted(EXPECTED.items()))
def test_each_kind_of_work_is_routed_to_its_queue(task_name, queue):
    assert _queue_of(task_name) == queue


#: periodic jobs that run long: on the ``celery`` queue, so that they never hold up platform's flushes
LONG_JOBS = ("analytics.", "billing.renew_subscriptions")


def test_every_periodic_job_but_the_long_ones_runs_on_the_platform_queue():
    app.loader.import_default_modules()
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        expected = "celery" if entry["task"].startswith(LONG_JOBS) else "platform"
        if entry["task"] == "aimesh.probe_unhealthy_keys":
            expected = "ai"  # it waits on the providers
        assert _queue_of(entry["task"]) == expected, entry["task"]


def test_every_task_is_routed_to_a_declared_queue():
    app.loader.import_default_modules()
    for name in app.tasks:
        if not name.startswith("celery."):
            assert _queue_of(name) in settings.CELERY_TASK_QUEUES, name


def test_messages_reach_the_named_queues_of_the_redis_broker():
    from ipcontrol.tasks import flush_validations
    from operations.tasks import run_task
    from settings_app.tasks import deliver_webhook

    app.control.purge()
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    try:
        deliver_webhook.delay("00000000-0000-0000-0000-000000000001")
        run_task.delay("00000000-0000-0000-0000-000000000002")
        flush_validations.delay()
        lengths = {queue: client.llen(queue) for queue in settings.CELERY_TASK_QUEUES}
        names = {queue: json.loads(raw)["headers"]["task"] for queue in lengths for raw in client.lrange(queue, 0, 0)}
    finally:
        app.control.purge()
    assert lengths == {"celery": 0, "platform": 1, "ai": 1, "webhooks": 1}
    assert names == {
        "platform": "ipcontrol.flush_validations",
        "ai": "operations.run_task",
        "webhooks": "settings_app.deliver_webhook",
    }


@pytest.mark.slow
def test_a_worker_of_the_filesystem_broker_consumes_the_named_queue_it_is_given(tmp_path):
    # bin/dev's embedded setup: no Redis, Celery's filesystem transport under CELAEST_VAR_DIR.
    env = {
        **{k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"}},
        "DJANGO_SETTINGS_MODULE": "celaest.settings",
        "CELAEST_ENV_FILE": "/nonexistent",
        "CELAEST_VAR_DIR": str(tmp_path),
    }
    send = (
        "import django; django.setup(); from celaest.celery import app, ensure_broker_folders; "
        "ensure_broker_folders(); app.send_task('celaest.worker_heartbeat')"
    )
    subprocess.run([sys.executable, "-c", send], cwd=ROOT, env=env, check=True, timeout=60)
    queued = list((tmp_path / "broker" / "queue").iterdir())
    assert len(queued) == 1 and "platform" in queued[0].name
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "celaest", "worker", "-Q", "platform", "--pool", "solo",
         "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "warning"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while any((tmp_path / "broker" / "queue").iterdir()) and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    assert not any((tmp_path / "broker" / "queue").iterdir()), "the platform worker did not take its message"
