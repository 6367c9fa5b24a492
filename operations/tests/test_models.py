import pytest

from operations.models import ProcessedTask
from tests.db import raises_integrity_error
from tests.factories import ProcessedTaskFactory, TaskBatchFactory

pytestmark = pytest.mark.django_db


def test_tokens_total_is_computed_by_the_database():
    task = ProcessedTaskFactory(tokens_input=1200, tokens_output=345)
    assert ProcessedTask.objects.values_list("tokens_total", flat=True).get(pk=task.pk) == 1545
    ProcessedTask.objects.filter(pk=task.pk).update(tokens_output=800)
    assert ProcessedTask.objects.values_list("tokens_total", flat=True).get(pk=task.pk) == 2000


def test_cached_tokens_are_part_of_input():
    with raises_integrity_error():
        ProcessedTaskFactory(tokens_input=10, tokens_cached=11)


def test_cost_cannot_be_negative():
    with raises_integrity_error():
        ProcessedTaskFactory(cost_usd=-1)


def test_batch_progress_cannot_exceed_total():
    with raises_integrity_error():
        TaskBatchFactory(total_tasks=2, completed_tasks=2, failed_tasks=1)


def test_one_task_per_batch_input():
    batch = TaskBatchFactory()
    ProcessedTaskFactory(organization=batch.organization, batch=batch, batch_index=0)
    with raises_integrity_error():
        ProcessedTaskFactory(organization=batch.organization, batch=batch, batch_index=0)
