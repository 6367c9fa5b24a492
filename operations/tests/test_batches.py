"""Batches: creation (JSON or file), chunked runs by the Celery job functions, idempotent
redelivery, cancel, and results export."""

import csv
import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from aimesh.models import Prompt
from aimesh.testing import ai_model, pool_key
from licensing.models import License, LicenseUsageLog
from operations.models import ProcessedTask, TaskBatch
from operations.tasks import run_batch_chunk
from settings_app.models import WebhookDelivery
from tests import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup(provider):
    ai_model()
    pool_key(provider, "sk-batch", rate_limit_rpm=10_000)
    Prompt.objects.create(
        slug="classify",
        name="Classify",
        user_template="Classify ticket {{ number }}: {{ text }}",
        variables=[{"name": "text"}, {"name": "number"}],
        is_active=True,
    )
    plan = f.SubscriptionPlanFactory(limits={"ai_requests_per_month": 1000, "max_batch_size": 250})
    license = f.LicenseFactory(plan=plan)
    user = f.UserFactory(organization=license.organization)
    f.WebhookFactory(organization=license.organization, events=["batch.completed", "batch.cancelled"])
    client = APIClient()
    client.force_authenticate(user)
    return {"client": client, "license": license, "provider": provider, "user": user}


def _create(client, inputs, capture):
    with capture(execute=False) as callbacks:
        response = client.post("/api/v1/batches", {"prompt": "classify", "inputs": inputs}, format="json")
    assert response.status_code == 202, response.json()
    return response.json()["id"], callbacks


def test_a_batch_of_200_inputs_finishes_with_exact_counts(setup, django_capture_on_commit_callbacks):
    inputs = [{"text": f"ticket body {i}", "number": str(i)} for i in range(200)]
    batch_id, callbacks = _create(setup["client"], inputs, django_capture_on_commit_callbacks)
    assert len(callbacks) == 1  # one callback queues every chunk
    batch = TaskBatch.objects.get(pk=batch_id)
    assert (batch.status, batch.total_tasks) == ("pending", 200)
    size = 25
    for start in range(0, 200, size):
        run_batch_chunk(batch_id, start, start + size)
    # A redelivered chunk (worker killed before its ack) runs and counts nothing twice.
    assert run_batch_chunk(batch_id, 0, size) == 0
    batch.refresh_from_db()
    assert (batch.status, batch.completed_tasks, batch.failed_tasks) == ("completed", 200, 0)
    assert batch.finished_at is not None
    assert ProcessedTask.objects.filter(batch=batch, status="completed").count() == 200
    assert sum(setup["provider"].hits.values()) == 200
    assert License.objects.get(pk=setup["license"].pk).ai_requests_used == 200
    assert LicenseUsageLog.objects.get(license=setup["license"]).ai_requests_count == 200
    assert WebhookDelivery.objects.filter(event_type="batch.completed").count() == 1

    jsonl = setup["client"].get(f"/api/v1/batches/{batch_id}/results-jsonl")
    rows = [json.loads(line) for line in b"".join(jsonl.streaming_content).decode().splitlines()]
    assert [row["batch_index"] for row in rows] == list(range(200))
    assert all(row["status"] == "completed" and row["output_text"] for row in rows)
    csv_response = setup["client"].get(f"/api/v1/batches/{batch_id}/results-csv")
    records = list(csv.DictReader(io.StringIO(b"".join(csv_response.streaming_content).decode())))
    assert len(records) == 200 and json.loads(records[7]["input_variables"])["number"] == "7"


def test_a_batch_over_the_plan_size_is_refused(setup):
    inputs = [{"text": "x", "number": "1"}] * 251
    response = setup["client"].post("/api/v1/batches", {"prompt": "classify", "inputs": inputs}, format="json")
    assert response.status_code == 400 and response.json()["error"]["code"] == "batch_too_large"


def test_a_bad_input_names_its_index(setup):
    inputs = [{"text": "x", "number": "1"}, {"text": "x"}]
    response = setup["client"].post("/api/v1/batches", {"prompt": "classify", "inputs": inputs}, format="json")
    assert response.status_code == 400 and response.json()["error"]["details"]["index"] == 1
    assert not TaskBatch.objects.exists()


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("inputs.csv", "text,number\nfirst,1\nsecond,2\nthird,3\n"),
        (
            "inputs.jsonl",
            '{"text": "first", "number": "1"}\n{"text": "second", "number": "2"}\n\n{"text": "3", "number": "3"}\n',
        ),
    ],
)
def test_inputs_can_be_uploaded_as_csv_or_jsonl(setup, name, content, django_capture_on_commit_callbacks):
    upload = SimpleUploadedFile(name, content.encode())
    with django_capture_on_commit_callbacks(execute=False):
        response = setup["client"].post("/api/v1/batches", {"prompt": "classify", "file": upload}, format="multipart")
    assert response.status_code == 202, response.json()
    batch = TaskBatch.objects.get(pk=response.json()["id"])
    assert batch.total_tasks == 3
    assert ProcessedTask.objects.get(batch=batch, batch_index=1).input_variables == {"text": "second", "number": "2"}


def test_cancel_stops_the_queued_tasks(setup, django_capture_on_commit_callbacks):
    inputs = [{"text": f"t{i}", "number": str(i)} for i in range(10)]
    batch_id, _ = _create(setup["client"], inputs, django_capture_on_commit_callbacks)
    run_batch_chunk(batch_id, 0, 3)
    response = setup["client"].post(f"/api/v1/batches/{batch_id}/cancel")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert run_batch_chunk(batch_id, 3, 10) == 0
    batch = TaskBatch.objects.get(pk=batch_id)
    assert (batch.completed_tasks, batch.failed_tasks) == (3, 0)
    assert ProcessedTask.objects.filter(batch=batch, status="cancelled").count() == 7
    assert setup["client"].post(f"/api/v1/batches/{batch_id}/cancel").status_code == 409
    assert WebhookDelivery.objects.filter(event_type="batch.cancelled").count() == 1


def test_a_batch_whose_provider_fails_ends_failed(setup, django_capture_on_commit_callbacks):
    setup["provider"].set_failure("sk-batch", "fail-401")
    batch_id, _ = _create(
        setup["client"],
        [{"text": "a", "number": "1"}, {"text": "b", "number": "2"}],
        django_capture_on_commit_callbacks,
    )
    run_batch_chunk(batch_id, 0, 2)
    batch = TaskBatch.objects.get(pk=batch_id)
    assert (batch.status, batch.completed_tasks, batch.failed_tasks) == ("failed", 0, 2)
    assert License.objects.get(pk=setup["license"].pk).ai_requests_used == 0


def test_a_batch_whose_provider_fails_midway_ends_partially_failed(setup, django_capture_on_commit_callbacks):
    inputs = [{"text": f"t{i}", "number": str(i)} for i in range(5)]
    batch_id, _ = _create(setup["client"], inputs, django_capture_on_commit_callbacks)
    assert run_batch_chunk(batch_id, 0, 3) == 3
    setup["provider"].set_failure("sk-batch", "fail-401")  # the key is revoked at the provider
    assert run_batch_chunk(batch_id, 3, 5) == 2
    batch = TaskBatch.objects.get(pk=batch_id)
    assert (batch.status, batch.completed_tasks, batch.failed_tasks) == ("partially_failed", 3, 2)
    assert batch.finished_at is not None
    statuses = ProcessedTask.objects.filter(batch=batch).order_by("batch_index").values_list("status", flat=True)
    assert list(statuses) == ["completed"] * 3 + ["failed"] * 2
    # The failed tasks reached no model: their requests are given back.
    assert License.objects.get(pk=setup["license"].pk).ai_requests_used == 3
    assert LicenseUsageLog.objects.get(license=setup["license"]).ai_requests_count == 3
    (event,) = WebhookDelivery.objects.filter(event_type="batch.completed")
    assert event.payload["data"] == {
        "batch_id": batch_id,
        "status": "partially_failed",
        "total_tasks": 5,
        "completed_tasks": 3,
        "failed_tasks": 2,
    }


def test_another_organizations_batch_is_invisible(setup, django_capture_on_commit_callbacks):
    batch_id, _ = _create(setup["client"], [{"text": "a", "number": "1"}], django_capture_on_commit_callbacks)
    stranger = APIClient()
    stranger.force_authenticate(f.UserFactory())
    assert stranger.post(f"/api/v1/batches/{batch_id}/cancel").status_code == 404
    assert stranger.get(f"/api/v1/batches/{batch_id}/results-csv").status_code == 404
