"""/api/v1/tasks and /batches: filters, cursor paging and a constant number of queries."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from identity.models import User
from operations.models import ProcessedTask, TaskBatch
from tests.clients import client_as
from tests.factories import (
    AIModelFactory,
    LicenseFactory,
    OrganizationFactory,
    ProcessedTaskFactory,
    PromptFactory,
    TaskBatchFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def viewer():
    return UserFactory(role=User.Role.VIEWER)


def _task(org, **kwargs):
    return ProcessedTaskFactory(organization=org, user=kwargs.pop("user", None), **kwargs)


def _ids(client, path, query):
    response = client.get(path, query)
    assert response.status_code == 200, response.json()
    return {row["id"] for row in response.json()["results"]}


def test_task_shows_its_model_and_prompt_and_hides_the_pool_key(viewer):
    org = viewer.organization
    model = AIModelFactory(display_name="GPT test")
    prompt = PromptFactory(slug="summarize", version=3)
    task = _task(org, user=viewer, model=model, prompt=prompt, license=LicenseFactory(organization=org))

    body = client_as(viewer).get(f"/api/v1/tasks/{task.pk}").json()

    assert body["model"] == {
        "id": str(model.pk), "provider": model.provider, "model_id": model.model_id, "display_name": "GPT test",
    }  # fmt: skip
    assert body["prompt"] == {"id": str(prompt.pk), "slug": "summarize", "version": 3, "name": prompt.name}
    assert body["tokens_total"] == 150 and body["user"] == str(viewer.pk) and body["license"] == str(task.license_id)
    assert "api_key" not in body


def test_task_filters(viewer):
    org = viewer.organization
    colleague = UserFactory(organization=org)
    model, prompt = AIModelFactory(), PromptFactory()
    batch = TaskBatchFactory(organization=org, user=colleague)
    now = timezone.now()
    failed = _task(org, status=ProcessedTask.Status.FAILED, created_at=now - timedelta(days=3))
    by_model = _task(org, model=model, user=colleague, created_at=now - timedelta(hours=1))
    in_batch = _task(org, batch=batch, batch_index=0, prompt=prompt)
    _task(OrganizationFactory())  # another organization
    client = client_as(viewer)

    assert _ids(client, "/api/v1/tasks", {}) == {str(failed.pk), str(by_model.pk), str(in_batch.pk)}
    assert _ids(client, "/api/v1/tasks", {"status": "failed"}) == {str(failed.pk)}
    assert _ids(client, "/api/v1/tasks", {"model": str(model.pk)}) == {str(by_model.pk)}
    assert _ids(client, "/api/v1/tasks", {"user": str(colleague.pk)}) == {str(by_model.pk)}
    assert _ids(client, "/api/v1/tasks", {"batch": str(batch.pk)}) == {str(in_batch.pk)}
    assert _ids(client, "/api/v1/tasks", {"prompt": str(prompt.pk)}) == {str(in_batch.pk)}
    day_ago = (now - timedelta(days=1)).isoformat()
    assert _ids(client, "/api/v1/tasks", {"created_at__lte": day_ago}) == {str(failed.pk)}
    assert _ids(client, "/api/v1/tasks", {"created_at__gte": day_ago}) == {str(by_model.pk), str(in_batch.pk)}
    assert client.get("/api/v1/tasks", {"created_at__gte": "yesterday"}).status_code == 400


def test_tasks_page_with_a_cursor_newest_first(viewer):
    org = viewer.organization
    start = timezone.now() - timedelta(hours=1)
    tasks = [_task(org, created_at=start + timedelta(minutes=i)) for i in range(5)]
    client = client_as(viewer)

    first = client.get("/api/v1/tasks", {"page_size": 2}).json()
    assert [row["id"] for row in first["results"]] == [str(tasks[4].pk), str(tasks[3].pk)]
    assert first["next"] and "cursor=" in first["next"] and "count" not in first

    seen = [row["id"] for row in first["results"]]
    next_url = first["next"]
    while next_url:
        page = client.get(next_url).json()
        seen += [row["id"] for row in page["results"]]
        next_url = page["next"]
    assert seen == [str(task.pk) for task in reversed(tasks)]


def test_tasks_ignore_a_client_ordering_that_would_break_the_cursor(viewer):
    org = viewer.organization
    start = timezone.now() - timedelta(hours=1)
    older = _task(org, created_at=start, tokens_input=999)
    newer = _task(org, created_at=start + timedelta(minutes=1), tokens_input=1)
    rows = client_as(viewer).get("/api/v1/tasks", {"ordering": "-tokens_input"}).json()["results"]
    assert [row["id"] for row in rows] == [str(newer.pk), str(older.pk)]


def test_task_list_runs_a_constant_number_of_queries(viewer):
    org = viewer.organization
    client = client_as(viewer)

    def count_queries():
        with CaptureQueriesContext(connection) as queries:
            response = client.get("/api/v1/tasks", {"page_size": 100})
        assert response.status_code == 200
        return len(response.json()["results"]), len(queries)

    def add_tasks(count):
        batch = TaskBatchFactory(organization=org, user=viewer, total_tasks=count)
        for index in range(count):
            _task(
                org, user=viewer, batch=batch, batch_index=index, prompt=PromptFactory(),
                license=LicenseFactory(organization=org),
            )  # fmt: skip

    add_tasks(5)
    rows_few, queries_few = count_queries()
    add_tasks(45)
    rows_many, queries_many = count_queries()

    assert (rows_few, rows_many) == (5, 50)
    assert queries_many == queries_few


def test_tasks_are_run_not_written(viewer):
    """POST runs a task (a prompt is required); a task's record cannot be edited or deleted."""
    owner = UserFactory(organization=viewer.organization, role=User.Role.OWNER)
    task = _task(viewer.organization)
    client = client_as(owner)
    assert client.post("/api/v1/tasks", {"input_text": "hi"}, format="json").status_code == 400
    assert client.patch(f"/api/v1/tasks/{task.pk}", {"input_text": "x"}, format="json").status_code == 405
    assert client.delete(f"/api/v1/tasks/{task.pk}").status_code == 405


# --- batches -----------------------------------------------------------------------------------


def test_batch_filters_search_and_progress(viewer):
    org = viewer.organization
    running = TaskBatchFactory(
        organization=org, user=viewer, name="March invoices", status=TaskBatch.Status.RUNNING, completed_tasks=4
    )
    done = TaskBatchFactory(organization=org, user=viewer, name="Tweets", status=TaskBatch.Status.COMPLETED)
    TaskBatchFactory(status=TaskBatch.Status.RUNNING)  # another organization
    client = client_as(viewer)

    assert _ids(client, "/api/v1/batches", {}) == {str(running.pk), str(done.pk)}
    assert _ids(client, "/api/v1/batches", {"status": "running"}) == {str(running.pk)}
    assert _ids(client, "/api/v1/batches", {"search": "invoices"}) == {str(running.pk)}
    body = client.get(f"/api/v1/batches/{running.pk}").json()
    assert (body["total_tasks"], body["completed_tasks"], body["failed_tasks"]) == (10, 4, 0)
    assert body["user"] == str(viewer.pk)
