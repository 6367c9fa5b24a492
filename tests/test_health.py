"""Health endpoints, including a real Celery worker proving it consumes the queue."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core.cache import cache

from celaest.health import HEARTBEAT_CACHE_KEY

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.django_db
def test_live_needs_nothing(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/health/live")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert client.get("/health/live/").status_code == 200


@pytest.mark.django_db
def test_ready_is_503_without_a_worker_heartbeat(client):
    cache.delete(HEARTBEAT_CACHE_KEY)
    response = client.get("/health/ready")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database"] == checks["cache"] == checks["broker"] == "ok"
    assert checks["worker"].startswith("error")


@pytest.mark.django_db
def test_ready_when_a_real_worker_runs_the_heartbeat(client, tmp_path):
    from django.db import connection

    from celaest.celery import app, worker_heartbeat

    cache.delete(HEARTBEAT_CACHE_KEY)
    app.control.purge()  # messages other tests left behind are not this worker's business
    db = connection.settings_dict
    database_url = f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "celaest", "worker", "--pool=solo", "-l", "warning",
         "-Q", "platform", "-n", f"health-{os.getpid()}@%h"],
        cwd=ROOT, env={**os.environ, "CELAEST_VAR_DIR": str(tmp_path), "DATABASE_URL": database_url},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        worker_heartbeat.delay()
        deadline = time.monotonic() + 30
        while cache.get(HEARTBEAT_CACHE_KEY) is None and time.monotonic() < deadline:
            time.sleep(0.2)
        response = client.get("/health/ready")
        assert response.status_code == 200, response.json()
        assert response.json() == {
            "status": "ok",
            "checks": {"database": "ok", "cache": "ok", "broker": "ok", "worker": "ok"},
        }
    finally:
        worker.terminate()
        worker.wait(timeout=30)
