"""A batch on real Celery worker processes: a worker killed with SIGKILL in the middle loses no
task and counts none twice once another worker takes over."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from aimesh.models import Prompt
from aimesh.testing import ai_model, pool_key
from licensing.models import License, LicenseUsageLog
from operations.models import ProcessedTask, TaskBatch
from operations.services import batch_create
from tests import factories as f

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


def _worker(name: str) -> subprocess.Popen:
    env = {
        **os.environ,
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


def test_a_killed_worker_loses_nothing_and_counts_nothing_twice(provider, settings):
    settings.AI_BATCH_CHUNK_SIZE = 20
    provider.set_latency(40)
    ai_model()
    pool_key(provider, "sk-worker", rate_limit_rpm=100_000)
    Prompt.objects.create(slug="w", name="W", user_template="{{ text }}", variables=[{"name": "text"}], is_active=True)
    license = f.LicenseFactory(plan=f.SubscriptionPlanFactory(limits={"ai_requests_per_month": 1000}))
    user = f.UserFactory(organization=license.organization)
    # Purge what earlier runs may have left on this test broker.
    from celaest.celery import app

    app.control.purge()
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
