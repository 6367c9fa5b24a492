"""Filtersets for operations endpoints. Foreign keys are filtered by id (no lookup query, and
another organization's id simply matches nothing)."""

import django_filters

from celaest.api.filters import ApiFilterSet

from .models import ProcessedTask, TaskBatch


class ProcessedTaskFilterSet(ApiFilterSet):
    model = django_filters.UUIDFilter(field_name="model_id")
    batch = django_filters.UUIDFilter(field_name="batch_id")
    prompt = django_filters.UUIDFilter(field_name="prompt_id")
    user = django_filters.UUIDFilter(field_name="user_id")
    license = django_filters.UUIDFilter(field_name="license_id")

    class Meta:
        model = ProcessedTask
        fields = {"status": ["exact", "in"], "created_at": ["gte", "lte"]}


class TaskBatchFilterSet(ApiFilterSet):
    user = django_filters.UUIDFilter(field_name="user_id")
    prompt = django_filters.UUIDFilter(field_name="prompt_id")

    class Meta:
        model = TaskBatch
        fields = {"status": ["exact", "in"], "created_at": ["gte", "lte"]}
