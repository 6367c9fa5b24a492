"""Operations endpoints: my organization's processed tasks and batches. ``POST /tasks`` runs a
task (sync, or queued with ``"async": true``), ``POST /batches`` queues a batch; batches can be
cancelled and their results downloaded as CSV or JSONL."""

import csv
import io
import json

from django.http import StreamingHttpResponse
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from aimesh import providers
from celaest.aio import sync_step
from celaest.api.pagination import CreatedAtCursorPagination
from celaest.api.parsers import StrictJSONParser
from celaest.api.views import ApiKeyScopeCheckMixin, AsyncApiView, rendered
from celaest.api.viewsets import ReadOnlyMixin, TenantViewSet
from operations import services
from operations.filters import ProcessedTaskFilterSet, TaskBatchFilterSet
from operations.inputs import MAX_UPLOAD_BYTES, batch_inputs_from_file
from operations.models import ProcessedTask, TaskBatch
from settings_app.models import UserApiKey

from .serializers import BatchCreateSerializer, ProcessedTaskSerializer, TaskBatchSerializer, TaskRunSerializer

RESULT_COLUMNS = (
    "batch_index", "status", "input_text", "input_variables", "output_text", "output_json", "error_code",
    "error_message", "tokens_input", "tokens_output", "tokens_cached", "cost_usd", "execution_time_ms",
)  # fmt: skip


@extend_schema_view(
    list=extend_schema(summary="List my organization's processed tasks (newest first)"),
    retrieve=extend_schema(summary="Get a processed task"),
)
class ProcessedTaskViewSet(TenantViewSet, ReadOnlyMixin):
    serializer_class = ProcessedTaskSerializer
    scope_resource = "tasks"
    max_request_bytes = 4 * 1024 * 1024  # input_text: up to 500,000 characters, escaped
    filterset_class = ProcessedTaskFilterSet
    pagination_class = CreatedAtCursorPagination
    # The cursor fixes the order (newest first); a client-chosen ordering would break it.
    filter_backends = [DjangoFilterBackend]

    def scoped_queryset(self):
        return ProcessedTask.objects.select_related("model", "prompt")

    def run_begin(self, request):
        """The synchronous half of ``POST /tasks`` (``TaskCollectionView``): validate, then queue
        the task (a finished response) or count it and record it running (a ``StartedTask``)."""
        serializer = TaskRunSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        self.caller_organization()
        arguments = {
            "user": request.user,
            "api_key": _api_key(request),
            "prompt_slug": data["prompt"],
            "prompt_version": data.get("prompt_version"),
            "variables": data.get("variables") or None,
            "input_text": data.get("input_text", ""),
            "model_name": data.get("model"),
        }
        if data["run_async"]:
            task = services.task_enqueue(**arguments)
            return self.finalize_response(
                request, Response(ProcessedTaskSerializer(task).data, status=status.HTTP_202_ACCEPTED)
            )
        return services.task_start(**arguments)

    def run_finish(self, request, task: ProcessedTask) -> Response:
        """The answer to ``POST /tasks`` once the task ran (audited as the API's writes are)."""
        task = self.scoped_queryset().get(pk=task.pk)
        return self.finalize_response(request, Response(ProcessedTaskSerializer(task).data, status=status.HTTP_200_OK))


class TaskCollectionView(ApiKeyScopeCheckMixin, AsyncApiView):
    """``/tasks``: ``POST`` runs a task, waiting for its answer as a coroutine (served by
    ``celaest.asgi.AIHandler``: no thread waits with it); ``GET`` is ``ProcessedTaskViewSet``'s
    list, run as one short synchronous step. The work is the viewset's (``run_begin``,
    ``run_finish``), so its permissions, scopes and audit apply unchanged."""

    permission_classes = ProcessedTaskViewSet.permission_classes
    scope_resource = ProcessedTaskViewSet.scope_resource
    read_roles = ProcessedTaskViewSet.read_roles
    write_roles = ProcessedTaskViewSet.write_roles
    max_request_bytes = ProcessedTaskViewSet.max_request_bytes
    _list = staticmethod(ProcessedTaskViewSet.as_view({"get": "list"}))

    async def dispatch(self, request, *args, **kwargs):
        if request.method in ("GET", "HEAD"):
            return await sync_step(self._list_rendered)(request)
        return await super().dispatch(request, *args, **kwargs)

    def _list_rendered(self, request):
        return rendered(self._list(request))

    def _viewset(self, request) -> ProcessedTaskViewSet:
        return ProcessedTaskViewSet(action="create", request=request, args=(), kwargs={}, format_kwarg=None, headers={})

    def prepare_post(self, request):
        return self._viewset(request).run_begin(request)

    @extend_schema(
        summary="Run a task (synchronously, or queued with async: true)",
        request=TaskRunSerializer,
        responses={
            200: ProcessedTaskSerializer,
            202: ProcessedTaskSerializer,
            402: OpenApiResponse(description="No active license (no_active_license, license_inactive)."),
            429: OpenApiResponse(description="A monthly limit is reached (ai_requests_limit_reached, ...)."),
            503: OpenApiResponse(description="No provider key could answer (ai_unavailable)."),
        },
        tags=["tasks"],
    )
    async def post(self, request, prepared):
        if isinstance(prepared, Response):
            return prepared
        task = await services.task_run(begun=prepared)
        return await sync_step(self._viewset(request).run_finish)(request, task)

    async def after_handler(self) -> None:
        await providers.clients_release()


def _result_row(task: ProcessedTask) -> dict:
    row = {name: getattr(task, name) for name in RESULT_COLUMNS}
    row["cost_usd"] = str(task.cost_usd)
    return row


@extend_schema_view(
    list=extend_schema(summary="List my organization's task batches"),
    retrieve=extend_schema(summary="Get a task batch with its progress"),
)
class TaskBatchViewSet(TenantViewSet, ReadOnlyMixin):
    serializer_class = TaskBatchSerializer
    parser_classes = [StrictJSONParser, MultiPartParser]  # inputs as JSON, or an uploaded CSV/JSONL file
    max_request_bytes = MAX_UPLOAD_BYTES + 1024 * 1024  # the file and the form around it
    scope_resource = "batches"
    filterset_class = TaskBatchFilterSet
    search_fields = ["name"]
    ordering_fields = ["created_at", "status", "name", "total_tasks"]
    ordering = ["-created_at"]

    def scoped_queryset(self):
        return TaskBatch.objects.all()

    @extend_schema(
        summary="Queue a batch of tasks (JSON inputs or an uploaded CSV/JSONL file)",
        request={"application/json": BatchCreateSerializer, "multipart/form-data": BatchCreateSerializer},
        responses={202: TaskBatchSerializer},
    )
    def create(self, request, *args, **kwargs):
        serializer = BatchCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        self.caller_organization()
        inputs = data.get("inputs") or batch_inputs_from_file(data["file"])
        batch = services.batch_create(
            user=request.user,
            api_key=_api_key(request),
            prompt_slug=data["prompt"],
            prompt_version=data.get("prompt_version"),
            inputs=inputs,
            name=data.get("name", ""),
        )
        return Response(TaskBatchSerializer(batch).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(summary="Cancel a batch (queued tasks are not run)", request=None, responses=TaskBatchSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        batch = services.batch_cancel(batch=self.get_object(), user=request.user)
        return Response(TaskBatchSerializer(batch).data)

    def _results(self):
        return self.get_object().tasks.order_by("batch_index").iterator(chunk_size=500)

    @extend_schema(summary="Download a batch's results as CSV", responses={(200, "text/csv"): OpenApiTypes.STR})
    @action(detail=True, methods=["get"], url_path="results-csv")
    def results_csv(self, request, pk=None):
        tasks = self._results()

        def rows():
            buffer = io.StringIO()
            writer = csv.DictWriter(buffer, fieldnames=RESULT_COLUMNS)
            writer.writeheader()
            for task in tasks:
                row = _result_row(task)
                row["input_variables"] = json.dumps(row["input_variables"])
                row["output_json"] = json.dumps(row["output_json"]) if row["output_json"] is not None else ""
                writer.writerow(row)
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
            yield buffer.getvalue()

        response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="batch-{pk}.csv"'
        return response

    @extend_schema(
        summary="Download a batch's results as JSON Lines",
        responses={(200, "application/x-ndjson"): OpenApiTypes.STR},
    )
    @action(detail=True, methods=["get"], url_path="results-jsonl")
    def results_jsonl(self, request, pk=None):
        tasks = self._results()
        lines = (json.dumps(_result_row(task)) + "\n" for task in tasks)
        response = StreamingHttpResponse(lines, content_type="application/x-ndjson")
        response["Content-Disposition"] = f'attachment; filename="batch-{pk}.jsonl"'
        return response


def _api_key(request) -> UserApiKey | None:
    """The API key the caller authenticated with (the license it is bound to pays), if any."""
    return request.auth if isinstance(request.auth, UserApiKey) else None
