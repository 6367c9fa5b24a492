"""Tasks whose worker died mid-task: the beat job runs the queued ones again (counted once) and
closes those that must not run again, so no task stays RUNNING and no batch stays open."""

import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from aimesh.models import Prompt
from aimesh.testing import ai_model, pool_key
from licensing.models import License, LicenseUsageLog
from licensing.usage import license_usage_reserve
from operations import services
from operations.models import ProcessedTask, TaskBatch
from operations.services import (
    _claim,
    batch_cancel,
    batch_create,
    batch_run_chunk,
    task_enqueue,
    task_execute,
    tasks_recover_stale,
)
from operations.tasks import run_batch_chunk as run_batch_chunk_job
from operations.tasks import run_task
from settings_app.models import WebhookDelivery
from tests import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup(provider, monkeypatch):
    # A task the job enqueues (on commit) runs here at once, as a worker would run it.
    monkeypatch.setattr(run_task, "delay", lambda task_id: run_task.apply(args=(task_id,), throw=True))
    ai_model()
    pool_key(provider, "sk-recover", rate_limit_rpm=10_000)
    Prompt.objects.create(slug="echo", name="Echo", user_template="{{ text }}", variables=[{"name": "text"}],
                          is_active=True)  # fmt: skip
    license = f.LicenseFactory(plan=f.SubscriptionPlanFactory(limits={"ai_requests_per_month": 100}))
    user = f.UserFactory(organization=license.organization)
    f.WebhookFactory(organization=license.organization, events=["*"])
    return {"license": license, "user": user, "provider": provider}


def _claimed_by_a_worker_that_died(task_id, *, seconds_ago: float) -> ProcessedTask:
    """What a worker killed during the provider call leaves: the task claimed (and counted), RUNNING."""
    task = _claim(task_id, time.monotonic())
    assert task is not None and task.status == "running"
    ProcessedTask.objects.filter(pk=task_id).update(started_at=timezone.now() - timedelta(seconds=seconds_ago))
    return task


def _stale() -> float:
    return settings.AI_TASK_STALE_SECONDS + 60


def _requests_used(license) -> tuple[int, int]:
    license = License.objects.get(pk=license.pk)
    period = LicenseUsageLog.objects.filter(license=license).first()
    return license.ai_requests_used, period.ai_requests_count if period else 0


def _recover(capture) -> dict:
    """Run the beat job and what it enqueued (after the commit, as in production)."""
    with capture(execute=True):
        return tasks_recover_stale()


def test_a_task_whose_worker_died_runs_again_once_and_is_counted_once(
    setup, django_capture_on_commit_callbacks
):  # fmt: skip
    with django_capture_on_commit_callbacks(execute=False):
        lost = task_enqueue(user=setup["user"], prompt_slug="echo", input_text="lost")
        busy = task_enqueue(user=setup["user"], prompt_slug="echo", input_text="busy")
    _claimed_by_a_worker_that_died(lost.pk, seconds_ago=_stale())
    _claimed_by_a_worker_that_died(busy.pk, seconds_ago=1)  # a live worker's claim
    assert _requests_used(setup["license"]) == (2, 2)

    assert _recover(django_capture_on_commit_callbacks) == {"resumed": 1, "closed": 0, "requeued": 0}
    lost.refresh_from_db()
    busy.refresh_from_db()
    assert (lost.status, lost.attempts) == ("completed", 1) and lost.output_text
    assert busy.status == "running"
    assert sum(setup["provider"].hits.values()) == 1
    assert _requests_used(setup["license"]) == (2, 2)  # the takeover counted nothing more
    period = LicenseUsageLog.objects.get(license=setup["license"])
    assert (period.tokens_input, period.tokens_output) == (lost.tokens_input, lost.tokens_output)
    assert WebhookDelivery.objects.filter(event_type="task.completed").count() == 1
    assert _recover(django_capture_on_commit_callbacks) == {"resumed": 0, "closed": 0, "requeued": 0}


def _batch(setup, size: int) -> TaskBatch:
    inputs = [f"input {i}" for i in range(size)]
    return batch_create(user=setup["user"], prompt_slug="echo", prompt_version=None, inputs=inputs)


def _batch_task(batch, index: int) -> ProcessedTask:
    return ProcessedTask.objects.get(batch=batch, batch_index=index)


def test_a_batch_task_whose_worker_died_runs_again_and_the_batch_completes(
    setup, django_capture_on_commit_callbacks
):  # fmt: skip
    with django_capture_on_commit_callbacks(execute=False):
        batch = _batch(setup, 3)
    batch_run_chunk(batch_id=batch.pk, start=0, stop=1)
    _claimed_by_a_worker_that_died(_batch_task(batch, 1).pk, seconds_ago=_stale())
    batch_run_chunk(batch_id=batch.pk, start=2, stop=3)
    batch.refresh_from_db()
    assert (batch.status, batch.completed_tasks, batch.failed_tasks) == ("running", 2, 0)

    assert _recover(django_capture_on_commit_callbacks) == {"resumed": 1, "closed": 0, "requeued": 0}
    batch.refresh_from_db()
    assert (batch.status, batch.completed_tasks, batch.failed_tasks) == ("completed", 3, 0)
    assert batch.finished_at is not None
    assert sum(setup["provider"].hits.values()) == 3
    assert _requests_used(setup["license"]) == (3, 3)
    assert WebhookDelivery.objects.filter(event_type="batch.completed").count() == 1


def test_a_lost_task_of_a_cancelled_batch_is_failed_not_run_again(setup, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        batch = _batch(setup, 3)
    batch_run_chunk(batch_id=batch.pk, start=0, stop=1)
    lost = _claimed_by_a_worker_that_died(_batch_task(batch, 1).pk, seconds_ago=_stale())
    batch_cancel(batch=batch)
    assert _requests_used(setup["license"]) == (2, 2)

    assert _recover(django_capture_on_commit_callbacks) == {"resumed": 0, "closed": 1, "requeued": 0}
    lost.refresh_from_db()
    assert (lost.status, lost.error_code) == ("failed", "worker_lost") and lost.completed_at is not None
    assert _requests_used(setup["license"]) == (1, 1)  # its reserved request is given back
    batch.refresh_from_db()
    assert (batch.status, batch.completed_tasks, batch.failed_tasks) == ("cancelled", 1, 1)
    assert list(ProcessedTask.objects.filter(batch=batch).order_by("batch_index").values_list("status", flat=True)) == [
        "completed",
        "failed",
        "cancelled",
    ]
    assert sum(setup["provider"].hits.values()) == 1
    assert WebhookDelivery.objects.filter(event_type="task.failed").count() == 1
    assert not WebhookDelivery.objects.filter(event_type__in=["batch.completed", "batch.failed"]).exists()
    assert _recover(django_capture_on_commit_callbacks) == {"resumed": 0, "closed": 0, "requeued": 0}


def _run_in_a_web_request_that_died(setup) -> ProcessedTask:
    """What a web process killed during a synchronous task leaves: counted, RUNNING, never claimed."""
    task = ProcessedTask.objects.create(
        organization=setup["license"].organization,
        user=setup["user"],
        license=setup["license"],
        prompt=Prompt.objects.get(slug="echo"),
        input_text="sync",
        status=ProcessedTask.Status.RUNNING,
        started_at=timezone.now() - timedelta(seconds=_stale()),
    )
    license_usage_reserve(license=setup["license"], task_id=task.pk)
    return task


def _claimed_too_often(setup) -> ProcessedTask:
    """A task whose every run killed its worker."""
    task = task_enqueue(user=setup["user"], prompt_slug="echo", input_text="poison")
    _claimed_by_a_worker_that_died(task.pk, seconds_ago=_stale())
    ProcessedTask.objects.filter(pk=task.pk).update(attempts=3)
    return task


@pytest.mark.parametrize("left_running", [_run_in_a_web_request_that_died, _claimed_too_often])
def test_a_lost_task_that_must_not_run_again_is_failed_and_gives_its_request_back(
    setup, left_running, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        task = left_running(setup)
    assert _requests_used(setup["license"]) == (1, 1)

    assert _recover(django_capture_on_commit_callbacks) == {"resumed": 0, "closed": 1, "requeued": 0}
    task.refresh_from_db()
    assert (task.status, task.error_code) == ("failed", "worker_lost")
    assert _requests_used(setup["license"]) == (0, 0)
    assert setup["provider"].hits == {}


def test_a_worker_dying_as_it_records_a_refused_claim_leaves_the_task_queued_and_uncounted(
    setup, monkeypatch, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        task = task_enqueue(user=setup["user"], prompt_slug="echo", input_text="refused")
    License.objects.filter(pk=setup["license"].pk).update(status=License.Status.SUSPENDED)

    def worker_killed(*args, **kwargs):
        raise SystemExit("killed")

    with monkeypatch.context() as dying:
        dying.setattr(services, "emit_event", worker_killed)  # while the refusal is being recorded
        with pytest.raises(SystemExit):
            task_execute(task_id=task.pk)
    task.refresh_from_db()
    # Not RUNNING and claimed (a takeover would run it uncounted): queued, for a redelivery.
    assert (task.status, task.attempts) == ("pending", 0)

    assert task_execute(task_id=task.pk).error_code == "license_inactive"
    task.refresh_from_db()
    assert (task.status, task.attempts) == ("failed", 1)
    assert _requests_used(setup["license"]) == (0, 0) and setup["provider"].hits == {}


# -- queued tasks whose message was lost -------------------------------------------------------------


def _queued_long_ago(*tasks) -> None:
    before = timezone.now() - timedelta(seconds=settings.AI_TASK_REQUEUE_SECONDS + 60)
    ProcessedTask.objects.filter(pk__in=[task.pk for task in tasks]).update(queued_at=before)


def test_a_queued_task_whose_message_was_lost_is_sent_again_once_and_counted_once(
    setup, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):  # the messages never reach a worker
        lost = task_enqueue(user=setup["user"], prompt_slug="echo", input_text="lost")
        waiting = task_enqueue(user=setup["user"], prompt_slug="echo", input_text="just queued")
    assert lost.queued_at is not None
    _queued_long_ago(lost)

    assert _recover(django_capture_on_commit_callbacks) == {"resumed": 0, "closed": 0, "requeued": 1}
    lost.refresh_from_db()
    waiting.refresh_from_db()
    assert (lost.status, lost.attempts) == ("completed", 1)
    assert waiting.status == "pending"  # queued recently: its message is presumably on its way
    assert sum(setup["provider"].hits.values()) == 1
    assert _requests_used(setup["license"]) == (1, 1)
    assert _recover(django_capture_on_commit_callbacks) == {"resumed": 0, "closed": 0, "requeued": 0}


def test_a_task_still_waiting_in_the_queue_gets_one_more_message_per_period_which_does_nothing(
    setup, monkeypatch, django_capture_on_commit_callbacks
):
    sent = []
    monkeypatch.setattr(run_task, "delay", sent.append)  # the worker has not got to it yet
    with django_capture_on_commit_callbacks(execute=True):
        task = task_enqueue(user=setup["user"], prompt_slug="echo", input_text="behind a long queue")
    _queued_long_ago(task)
    assert _recover(django_capture_on_commit_callbacks)["requeued"] == 1
    assert _recover(django_capture_on_commit_callbacks)["requeued"] == 0  # queued_at moved on
    assert sent == [str(task.pk), str(task.pk)]

    for message in sent:  # both messages are delivered in the end: one runs it, one finds it done
        run_task.apply(args=(message,), throw=True)
    task.refresh_from_db()
    assert (task.status, task.attempts) == ("completed", 1)
    assert sum(setup["provider"].hits.values()) == 1 and _requests_used(setup["license"]) == (1, 1)


def test_a_batch_whose_messages_were_lost_is_started_and_completed_by_its_chunks_sent_again(
    setup, settings, monkeypatch, django_capture_on_commit_callbacks
):
    settings.AI_BATCH_CHUNK_SIZE = 2
    chunks = []
    monkeypatch.setattr(run_batch_chunk_job, "delay", lambda *args: chunks.append(args))
    with django_capture_on_commit_callbacks(execute=False):
        batch = _batch(setup, 5)
        cancelled = _batch(setup, 2)
    batch_cancel(batch=cancelled)
    _queued_long_ago(*ProcessedTask.objects.filter(batch__in=[batch, cancelled]))

    assert _recover(django_capture_on_commit_callbacks) == {"resumed": 0, "closed": 0, "requeued": 5}
    assert sorted(chunks) == [(str(batch.pk), 0, 2), (str(batch.pk), 2, 4), (str(batch.pk), 4, 6)]
    for args in chunks:
        run_batch_chunk_job.apply(args=args, throw=True)
    batch.refresh_from_db()
    assert (batch.status, batch.completed_tasks, batch.failed_tasks) == ("completed", 5, 0)
    assert sum(setup["provider"].hits.values()) == 5
    assert WebhookDelivery.objects.filter(event_type="batch.completed").count() == 1


def test_a_broker_refusing_the_message_still_answers_202_and_the_beat_job_sends_it_later(
    setup, monkeypatch, django_capture_on_commit_callbacks
):
    from kombu.exceptions import OperationalError
    from rest_framework.test import APIClient

    def broker_down(task_id):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    client = APIClient()
    client.force_authenticate(setup["user"])
    with monkeypatch.context() as down:
        down.setattr(run_task, "delay", broker_down)
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                "/api/v1/tasks", {"prompt": "echo", "variables": {"text": "hi"}, "async": True}, format="json"
            )
    assert response.status_code == 202
    task = ProcessedTask.objects.get(pk=response.json()["id"])
    assert task.status == "pending" and setup["provider"].hits == {}

    _queued_long_ago(task)
    assert _recover(django_capture_on_commit_callbacks)["requeued"] == 1
    task.refresh_from_db()
    assert task.status == "completed"
