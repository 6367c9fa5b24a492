"""Analytics endpoints: my organization's ROI metrics and telemetry (read-only; telemetry
ingestion has its own batch endpoint)."""

import csv

from django.http import StreamingHttpResponse
from django.utils import timezone
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.filters import OrderingFilter
from rest_framework.response import Response

from analytics import services
from analytics.filters import RoiMetricFilterSet, TelemetryEventFilterSet
from analytics.models import RoiMetric, TelemetryEvent
from audit.models import AuditLog
from audit.services import audit_record
from celaest.api import permissions as perms
from celaest.api.pagination import CreatedAtCursorPagination
from celaest.api.viewsets import ReadOnlyMixin, TenantViewSet
from celaest.errors import LimitExceeded
from celaest.ratelimit import rate_limit_hit

from .serializers import (
    RoiMetricSerializer,
    RoiSummarySerializer,
    TelemetryBatchResultSerializer,
    TelemetryBatchSerializer,
    TelemetryEventSerializer,
)

_EXPORT_COLUMNS = RoiMetricSerializer.Meta.fields
TELEMETRY_BATCHES_PER_MINUTE = 120


class _Echo:
    """A file-like object whose write returns the line, for streaming csv.writer output."""

    def write(self, value):
        return value


@extend_schema_view(
    list=extend_schema(summary="List my organization's ROI metrics"),
    retrieve=extend_schema(summary="Get one period's ROI metrics"),
    export=extend_schema(
        summary="Export my organization's ROI metrics as CSV (same filters as the list)",
        responses={(200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="CSV with a header row")},
    ),
    summary=extend_schema(summary="This month against last month", responses=RoiSummarySerializer),
)
class RoiMetricViewSet(TenantViewSet, ReadOnlyMixin):
    serializer_class = RoiMetricSerializer
    scope_resource = "roi-metrics"
    filterset_class = RoiMetricFilterSet
    # Nothing here is free text: no search parameter.
    filter_backends = [DjangoFilterBackend, OrderingFilter]
    ordering_fields = ["period_start", "tasks_completed", "money_saved", "time_saved_minutes", "ai_cost_usd"]
    ordering = ["-period_start", "period_type"]

    def scoped_queryset(self):
        return RoiMetric.objects.all()

    @action(detail=False, methods=["get"], pagination_class=None)
    def export(self, request):
        rows = self.filter_queryset(self.get_queryset()).values_list(*_EXPORT_COLUMNS)
        writer = csv.writer(_Echo())
        lines = (writer.writerow(row) for row in rows.iterator(chunk_size=2000))
        response = StreamingHttpResponse(
            (line for chunk in ([writer.writerow(_EXPORT_COLUMNS)], lines) for line in chunk),
            content_type="text/csv",
        )
        response["Content-Disposition"] = 'attachment; filename="roi-metrics.csv"'
        audit_record(
            action=AuditLog.Action.EXPORT,
            resource_type="analytics.roimetric",
            user=request.user,
            changes={"filters": dict(request.query_params.lists())},
            ip_address=request.META.get("REMOTE_ADDR"),
            source="api",
        )
        return response

    @action(detail=False, methods=["get"], pagination_class=None, filter_backends=[])
    def summary(self, request):
        organization = self.caller_organization()
        data = services.roi_month_summary(organization=organization, today=timezone.localdate())
        return Response(RoiSummarySerializer(data).data)


@extend_schema_view(
    list=extend_schema(summary="List my organization's telemetry events (newest first)"),
    batch=extend_schema(
        summary="Ingest up to 500 telemetry events",
        request=TelemetryBatchSerializer,
        responses={201: TelemetryBatchResultSerializer},
    ),
)
class TelemetryEventViewSet(TenantViewSet, mixins.ListModelMixin):
    serializer_class = TelemetryEventSerializer
    scope_resource = "telemetry"
    filterset_class = TelemetryEventFilterSet
    pagination_class = CreatedAtCursorPagination
    # The cursor fixes the order (newest first); a client-chosen ordering would break it.
    filter_backends = [DjangoFilterBackend]

    write_roles = perms.ALL_ROLES  # every member's client reports its own usage

    def scoped_queryset(self):
        return TelemetryEvent.objects.all()

    @action(detail=False, methods=["post"], pagination_class=None, filter_backends=[])
    def batch(self, request):
        organization = self.caller_organization()
        decision = rate_limit_hit(key=f"telemetry:{organization.pk}", limit=TELEMETRY_BATCHES_PER_MINUTE)
        if not decision.allowed:
            raise LimitExceeded(
                "Too many telemetry batches; slow down.", code="rate_limited", retry_after=decision.retry_after
            )
        payload = TelemetryBatchSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        accepted = services.telemetry_ingest(
            organization=organization, user=request.user, events=payload.validated_data["events"]
        )
        return Response({"accepted": accepted}, status=status.HTTP_201_CREATED)
