"""Periodic jobs run once at a time and leave their last outcome for staff."""

import threading
import time

import pytest
from django.core.cache import cache
from django.db import connection

from analytics import services as analytics_services
from analytics.tasks import aggregate_roi_today
from audit.models import SystemEvent
from celaest.jobs import periodic_job_status
from tests.factories import StaffUserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_job_triggered_twice_at_the_same_moment_runs_once(monkeypatch):
    runs = []

    def slow_aggregate(**kwargs):
        runs.append(kwargs)
        time.sleep(0.5)
        return {}

    monkeypatch.setattr(analytics_services, "roi_aggregate_all", slow_aggregate)
    start = threading.Barrier(2)

    def trigger():
        start.wait()
        try:
            aggregate_roi_today()
        finally:
            connection.close()  # the thread's own connection

    threads = [threading.Thread(target=trigger) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(runs) == 1
    aggregate_roi_today()  # the lock is released once the run ends
    assert len(runs) == 2


def test_last_run_and_failures_are_recorded(monkeypatch, client):
    def boom(**kwargs):
        raise RuntimeError("database on fire")

    assert aggregate_roi_today() == {"day": 0, "week": 0, "month": 0}
    status = {row["task"]: row for row in periodic_job_status()}
    assert status["analytics.aggregate_roi_today"]["outcome"] == "succeeded"
    assert status["analytics.aggregate_roi_closing"]["outcome"] == "never run"

    monkeypatch.setattr(analytics_services, "roi_aggregate_all", boom)
    with pytest.raises(RuntimeError):
        aggregate_roi_today()
    assert {row["task"]: row for row in periodic_job_status()}["analytics.aggregate_roi_today"]["outcome"] == "failed"
    event = SystemEvent.objects.get(event_type="job.failed")
    assert event.source == "analytics.aggregate_roi_today" and "database on fire" in event.data["error"]
    assert cache.get("job-lock:analytics.aggregate_roi_today") is None

    client.force_login(StaffUserFactory())
    html = client.get("/admin/").content.decode()
    assert 'data-job="analytics.aggregate_roi_today"' in html and "failed" in html
