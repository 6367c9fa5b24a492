"""Real Celery worker processes killed with SIGKILL in the middle of AI work: no task is lost and
none is counted twice, whether the whole worker dies (its messages come back after the broker's
visibility timeout) or only its pool process (its message comes back at once, too early)."""

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from aimesh.models import Prompt
from aimesh.testing import ai_model, pool_key
from licensing.models import License, LicenseUsageLog
from operations.models import ProcessedTask, TaskBatch
from operations.services import batch_create, task_enqueue, tasks_recover_stale
from tests import factories as f

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


def _worker(name: str, **extra_env: str) -> subprocess.Popen:
    env = {
        **os.environ,
        **extra_env,
        "DJANGO_SETTINGS_MODULE": "operations.tests.worker_settings",
        "DATABASE_URL": os.environ["DATABASE_URL"].rsplit("/", 1)[0] + "/" + connection.settings_dict["NAME"],
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "celaest", "worker", "-c", "1", "-n", f"{name}@%h",
         "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "warning"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip


def _wait(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def _ai_work(provider, *, latency_ms: int):
    """Prompt "w" answered by the fake provider after ``latency_ms``, a user whose license allows
    1000 requests, and a broker emptied of what earlier runs may have left."""
    provider.set_latency(latency_ms)
    ai_model()
    pool_key(provider, "sk-worker", rate_limit_rpm=100_000)
    Prompt.objects.create(slug="w", name="W", user_template="{{ text }}", variables=[{"name": "text"}], is_active=True)
    license = f.LicenseFactory(plan=f.SubscriptionPlanFactory(limits={"ai_requests_per_month": 1000}))
    from celaest.celery import app

    app.control.purge()
    return license, f.UserFactory(organization=license.organization)


def test_a_killed_worker_loses_nothing_and_counts_nothing_twice(provider, settings):
    settings.AI_BATCH_CHUNK_SIZE = 20
    license, user = _ai_work(provider, latency_ms=40)
    batch = batch_create(user=user, prompt_slug="w", prompt_version=None, inputs=[f"input {i}" for i in range(40)])

    def done_count():
        return ProcessedTask.objects.filter(batch=batch, status="completed").count()

    first = _worker("first")
    try:
        assert _wait(lambda: done_count() >= 5, 60), "the first worker never got going"
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        killed_at = done_count()
        assert killed_at < 40
        second = _worker("second")
        try:
            assert _wait(lambda: TaskBatch.objects.get(pk=batch.pk).status == "completed", 90)
        finally:
            os.killpg(second.pid, signal.SIGKILL)
            second.wait(timeout=10)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    batch.refresh_from_db()
    assert (batch.completed_tasks, batch.failed_tasks) == (40, 0)
    assert ProcessedTask.objects.filter(batch=batch, status="completed").count() == 40
    license = License.objects.get(pk=license.pk)
    assert license.ai_requests_used == 40
    assert LicenseUsageLog.objects.get(license=license).ai_requests_count == 40


def _pool_processes(worker: subprocess.Popen) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(worker.pid)], capture_output=True, text=True, check=False)
    return [int(pid) for pid in found.stdout.split()]


def test_a_task_whose_pool_process_was_killed_is_finished_by_the_beat_job(provider, settings):
    # The OOM killer takes the pool process, not the worker: the worker requeues the message at
    # once (reject_on_worker_lost), the redelivery finds the claim fresh and is acknowledged, and
    # the task would stay RUNNING for ever.
    settings.AI_TASK_STALE_SECONDS = stale = 8
    license, user = _ai_work(provider, latency_ms=2000)
    worker = _worker("oom", AI_TASK_STALE_SECONDS=str(stale))
    try:
        task = task_enqueue(user=user, prompt_slug="w", input_text="big input")
        assert _wait(lambda: sum(provider.hits.values()) == 1, 60), "the worker never called the provider"
        (pool_process,) = _pool_processes(worker)
        os.kill(pool_process, signal.SIGKILL)
        claimed_at = ProcessedTask.objects.get(pk=task.pk).started_at
        # Past the stale time nothing has come back to it: the redelivery was skipped and acked.
        time.sleep(max(0.0, stale + 1 - (time.time() - claimed_at.timestamp())))
        task.refresh_from_db()
        assert (task.status, task.started_at, task.attempts) == ("running", claimed_at, 1)
        assert worker.poll() is None and _pool_processes(worker) != [pool_process]

        assert tasks_recover_stale() == {"resumed": 1, "closed": 0, "requeued": 0}
        assert _wait(lambda: ProcessedTask.objects.get(pk=task.pk).status == "completed", 60)
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
    assert sum(provider.hits.values()) == 2  # the killed call and the run that finished
    license = License.objects.get(pk=license.pk)
    assert license.ai_requests_used == 1
    assert LicenseUsageLog.objects.get(license=license).ai_requests_count == 1


def test_messages_the_broker_lost_are_sent_again_by_the_beat_job_and_run_once(provider, settings):
    # Redis restarted without its data: the queued messages are gone, the tasks stay queued.
    settings.AI_BATCH_CHUNK_SIZE = 5
    license, user = _ai_work(provider, latency_ms=10)
    task = task_enqueue(user=user, prompt_slug="w", input_text="alone")
    batch = batch_create(user=user, prompt_slug="w", prompt_version=None, inputs=[f"in {i}" for i in range(12)])
    from celaest.celery import app

    assert app.control.purge() == 1 + 3  # the task's message and the batch's three chunks
    ProcessedTask.objects.update(queued_at=timezone.now() - timedelta(seconds=settings.AI_TASK_REQUEUE_SECONDS + 1))

    worker = _worker("requeue")
    try:
        assert tasks_recover_stale() == {"resumed": 0, "closed": 0, "requeued": 13}
        assert _wait(lambda: TaskBatch.objects.get(pk=batch.pk).status == "completed", 60)
        assert _wait(lambda: ProcessedTask.objects.get(pk=task.pk).status == "completed", 30)
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
    assert tasks_recover_stale() == {"resumed": 0, "closed": 0, "requeued": 0}
    batch.refresh_from_db()
    assert (batch.completed_tasks, batch.failed_tasks) == (12, 0)
    assert sum(provider.hits.values()) == 13
    assert License.objects.get(pk=license.pk).ai_requests_used == 13
