"""Analytics endpoints: my organization's ROI metrics and telemetry (read-only; telemetry
ingestion has its own batch endpoint)."""

from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins
from rest_framework.filters import OrderingFilter

from analytics.filters import RoiMetricFilterSet, TelemetryEventFilterSet
from analytics.models import RoiMetric, TelemetryEvent
from celaest.api.pagination import CreatedAtCursorPagination
from celaest.api.viewsets import ReadOnlyMixin, TenantViewSet

from .serializers import RoiMetricSerializer, TelemetryEventSerializer


@extend_schema_view(
    list=extend_schema(summary="List my organization's ROI metrics"),
    retrieve=extend_schema(summary="Get one period's ROI metrics"),
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


@extend_schema_view(
    list=extend_schema(summary="List my organization's telemetry events (newest first)"),
)
class TelemetryEventViewSet(TenantViewSet, mixins.ListModelMixin):
    serializer_class = TelemetryEventSerializer
    scope_resource = "telemetry"
    filterset_class = TelemetryEventFilterSet
    pagination_class = CreatedAtCursorPagination
    # The cursor fixes the order (newest first); a client-chosen ordering would break it.
    filter_backends = [DjangoFilterBackend]

    def scoped_queryset(self):
        return TelemetryEvent.objects.all()
