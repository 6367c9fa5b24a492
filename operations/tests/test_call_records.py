"""The gateway's tasks written behind the answer, with their counts (``operations.call_records``):
nothing written while the client waits, everything written at the meter's flush exactly once,
and a process that dies mid-call leaves a running row the stale-task job closes."""

import re
import time
import uuid
from datetime import timedelta

import openai
import pytest
import time_machine
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from aimesh import providers
from aimesh.testing import ai_model, pool_key
from celaest.errors import DomainError, LimitExceeded
from identity.models import User
from licensing.meter import meter_flush, meter_pending
from licensing.models import License, LicenseUsageLog
from operations import call_records
from operations.api.serializers import ChatCompletionRequestSerializer
from operations.call_records import call_task_answer, call_task_begin, call_task_failure
from operations.models import ProcessedTask
from operations.services import tasks_recover_stale
from settings_app.models import WebhookDelivery
from settings_app.services.api_keys import api_key_create
from tests import factories as f


@pytest.fixture
def behind(settings):
    """As in production: records and counts reach PostgreSQL when the meter is flushed."""
    settings.LICENSE_METER_WRITE_THROUGH = False


@pytest.fixture(params=["copy", "orm"])
def writer(request, monkeypatch):
    """Both ways of writing a batch: PostgreSQL's COPY, and the ORM's (any other database)."""
    if request.param == "orm":
        monkeypatch.setattr(call_records, "_rows_copy", call_records._rows_save)
    return request.param


def _license(limit=None) -> License:
    return f.LicenseFactory(plan=f.SubscriptionPlanFactory(limits={"ai_requests_per_month": limit}))


def _task(license: License, model, *, user=None) -> ProcessedTask:
    """A gateway call's task as ``_call_begin`` builds it (not saved)."""
    now = timezone.now()
    return ProcessedTask(
        pk=uuid.uuid4(),
        organization_id=license.organization_id,
        user=user or f.UserFactory(organization=license.organization),
        license=license,
        model=model,
        input_text="question",
        input_variables={"messages": 1, "gateway": "chat.completions"},
        status=ProcessedTask.Status.RUNNING,
        started_at=now,
        created_at=now,
    )


def _call(license: License, model, *, user=None) -> ProcessedTask:
    """A whole call: counted with its running row, then answered."""
    task = _task(license, model, user=user)
    call_task_begin(task=task)
    return _answer(task, model)


def _answer(task: ProcessedTask, model, *, key=None, tokens=(12, 5)) -> ProcessedTask:
    usage = providers.Usage(tokens_input=tokens[0], tokens_output=tokens[1], tokens_cached=0)
    return call_task_answer(
        task=task,
        started=time.monotonic(),
        model=model,
        key=key,
        usage=usage,
        text="answer",
        output_json=None,
        attempts=1,
    )


def _requests_used(license: License) -> int:
    return License.objects.get(pk=license.pk).ai_requests_used


@pytest.mark.django_db(transaction=True)
def test_a_gateway_call_is_written_with_its_count_and_event_when_the_meter_is_flushed(asgi_server, provider, behind):
    ai_model("gpt-4o-mini")
    pool_key(provider, "sk-behind")
    license = _license(limit=100)
    user = f.UserFactory(organization=license.organization)
    f.WebhookFactory(organization=license.organization, user=user, events=["task.completed"])
    raw = api_key_create(user=user, name="behind", scopes=["tasks:write"]).raw_key
    client = openai.OpenAI(api_key=raw, base_url=f"{asgi_server.url}/v1", max_retries=0, timeout=20)
    answer = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    # The answer left before anything reached PostgreSQL.
    assert not ProcessedTask.objects.exists()
    assert not WebhookDelivery.objects.exists()
    assert meter_pending() == 2  # the count with the running row, the tokens with the end
    assert meter_flush() == 2
    task = ProcessedTask.objects.get()
    assert answer.id == f"chatcmpl-{task.pk.hex}"
    assert task.status == ProcessedTask.Status.COMPLETED
    assert (task.tokens_input, task.tokens_output) == (answer.usage.prompt_tokens, answer.usage.completion_tokens)
    assert task.cost_usd > 0 and task.model.model_id == "gpt-4o-mini" and task.api_key is not None
    assert task.user == user and task.license == license and task.input_variables["gateway"] == "chat.completions"
    month = LicenseUsageLog.objects.get(license=license)
    assert (month.ai_requests_count, month.tokens_input, month.tokens_output, month.calculated_cost) == (
        1, task.tokens_input, task.tokens_output, task.cost_usd
    )  # fmt: skip
    delivery = WebhookDelivery.objects.get()
    assert delivery.event_type == "task.completed" and delivery.payload["data"]["task_id"] == str(task.pk)
    assert meter_flush() == 0 and ProcessedTask.objects.count() == 1  # nothing written twice


@pytest.mark.django_db
def test_a_call_begun_and_ended_within_one_flush_is_one_insert(behind):
    license, model = _license(), f.AIModelFactory()
    for _ in range(3):
        _call(license, model)
    with CaptureQueriesContext(connection) as queries:
        meter_flush()
    writes = [
        q["sql"].split(" ", 1)[0] for q in queries if re.match(r'(INSERT INTO|UPDATE) "?processed_tasks\b', q["sql"])
    ]
    assert writes == ["INSERT"]  # no UPDATE of the tasks: each row is written once, finished
    assert ProcessedTask.objects.filter(status=ProcessedTask.Status.COMPLETED, tokens_output=5).count() == 3
    assert _requests_used(license) == 3


@pytest.mark.django_db
def test_a_call_spanning_flushes_is_inserted_running_then_completed(behind, writer):
    license, model = _license(), f.AIModelFactory()
    key = f.AIApiKeyFactory()
    task = _task(license, model)
    call_task_begin(task=task)
    meter_flush()
    row = ProcessedTask.objects.get()
    assert row.status == ProcessedTask.Status.RUNNING and row.tokens_input == 0 and row.input_text == "question"
    assert row.created_at == task.created_at
    _answer(task, model, key=key, tokens=(30, 7))
    meter_flush()
    row.refresh_from_db()
    assert (row.status, row.tokens_input, row.tokens_output, row.api_key) == ("completed", 30, 7, key)
    assert row.completed_at is not None and row.created_at == task.created_at
    assert LicenseUsageLog.objects.get(license=license).tokens_input == 30


@pytest.mark.django_db
def test_a_process_dying_after_the_count_leaves_a_running_row_the_stale_job_closes_and_gives_back(behind, writer):
    license, model = _license(limit=10), f.AIModelFactory()
    task = _task(license, model)
    call_task_begin(task=task)  # counted; then the process dies before the answer
    meter_flush()
    assert ProcessedTask.objects.get().status == ProcessedTask.Status.RUNNING
    assert _requests_used(license) == 1
    with time_machine.travel(timezone.now() + timedelta(hours=1), tick=False):
        assert tasks_recover_stale()["closed"] == 1
    meter_flush()
    row = ProcessedTask.objects.get()
    assert (row.status, row.error_code) == (ProcessedTask.Status.FAILED, "worker_lost")
    assert _requests_used(license) == 0  # no provider answered: the request is given back, once
    # The end the dead process never sent cannot come back to reopen it: a late one changes nothing.
    _answer(task, model)
    meter_flush()
    assert ProcessedTask.objects.get().status == ProcessedTask.Status.FAILED


@pytest.mark.django_db
def test_a_refused_call_leaves_no_record(behind):
    license, model = _license(limit=1), f.AIModelFactory()
    _call(license, model)
    refused = _task(license, model)
    with pytest.raises(LimitExceeded), transaction.atomic():  # the test's transaction goes on
        call_task_begin(task=refused)
    meter_flush()
    assert list(ProcessedTask.objects.values_list("status", flat=True)) == ["completed"]
    assert _requests_used(license) == 1


@pytest.mark.django_db
def test_a_failed_call_gives_its_request_back_with_its_record(behind):
    license, model = _license(limit=10), f.AIModelFactory()
    task = _task(license, model)
    call_task_begin(task=task)
    error = DomainError("No provider key could answer.", code="ai_unavailable")
    call_task_failure(task=task, error=error, started=time.monotonic(), release_license=True, attempts=3)
    meter_flush()
    row = ProcessedTask.objects.get()
    assert (row.status, row.error_code, row.attempts) == ("failed", "ai_unavailable", 3)
    assert _requests_used(license) == 0


@pytest.mark.django_db
def test_records_of_rows_deleted_meanwhile_are_written_without_them_and_never_stop_the_flush(behind, writer):
    license, model = _license(), f.AIModelFactory()
    gone_user = f.UserFactory(organization=license.organization)
    kept = _call(license, model, user=gone_user)
    gone_model = f.AIModelFactory()
    _call(license, gone_model)
    User._base_manager.filter(pk=gone_user.pk).delete()
    gone_model.delete()
    other = _call(license, model)
    meter_flush()
    assert meter_pending() == 0
    rows = {row.pk: row for row in ProcessedTask.objects.all()}
    assert set(rows) == {kept.pk, other.pk}  # the one whose model is gone is dropped (logged)
    assert rows[kept.pk].user is None and rows[kept.pk].status == ProcessedTask.Status.COMPLETED
    assert _requests_used(license) == 3  # every count is kept


@pytest.mark.django_db
def test_without_redis_the_record_is_written_at_once_with_the_count(settings):
    settings.REDIS_URL = ""
    license, model = _license(limit=10), f.AIModelFactory()
    task = _task(license, model)
    call_task_begin(task=task)
    assert ProcessedTask.objects.get().status == ProcessedTask.Status.RUNNING
    assert _requests_used(license) == 1
    _answer(task, model, tokens=(8, 2))
    row = ProcessedTask.objects.get()
    assert (row.status, row.tokens_input, row.tokens_output) == ("completed", 8, 2)
    assert LicenseUsageLog.objects.get(license=license).tokens_input == 8


def test_gateway_request_serializers_share_their_fields_not_their_results():
    good = ChatCompletionRequestSerializer(
        data={"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 7}
    )
    bad = ChatCompletionRequestSerializer(
        data={"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 0}
    )
    assert good.fields is bad.fields
    assert bad.is_valid() is False and "max_tokens" in bad.errors
    assert good.is_valid() is True and good.validated_data["max_tokens"] == 7 and not good.errors
    assert bad.errors and "max_tokens" in bad.errors
