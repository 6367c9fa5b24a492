"""Operations endpoints: my organization's processed tasks and batches (read-only; running
tasks and batches is a service operation with its own endpoints)."""

from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema, extend_schema_view

from celaest.api.pagination import CreatedAtCursorPagination
from celaest.api.viewsets import ReadOnlyMixin, TenantViewSet
from operations.filters import ProcessedTaskFilterSet, TaskBatchFilterSet
from operations.models import ProcessedTask, TaskBatch

from .serializers import ProcessedTaskSerializer, TaskBatchSerializer


@extend_schema_view(
    list=extend_schema(summary="List my organization's processed tasks (newest first)"),
    retrieve=extend_schema(summary="Get a processed task"),
)
class ProcessedTaskViewSet(TenantViewSet, ReadOnlyMixin):
    serializer_class = ProcessedTaskSerializer
    scope_resource = "tasks"
    filterset_class = ProcessedTaskFilterSet
    pagination_class = CreatedAtCursorPagination
    # The cursor fixes the order (newest first); a client-chosen ordering would break it.
    filter_backends = [DjangoFilterBackend]

    def scoped_queryset(self):
        return ProcessedTask.objects.select_related("model", "prompt")


@extend_schema_view(
    list=extend_schema(summary="List my organization's task batches"),
    retrieve=extend_schema(summary="Get a task batch with its progress"),
)
class TaskBatchViewSet(TenantViewSet, ReadOnlyMixin):
    serializer_class = TaskBatchSerializer
    scope_resource = "batches"
    filterset_class = TaskBatchFilterSet
    search_fields = ["name"]
    ordering_fields = ["created_at", "status", "name", "total_tasks"]
    ordering = ["-created_at"]

    def scoped_queryset(self):
        return TaskBatch.objects.all()
