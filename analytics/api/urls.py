"""REST routes of this app under /api/v1/."""

from celaest.api.routers import ApiRouter

from .views import RoiMetricViewSet, TelemetryEventViewSet

router = ApiRouter()
router.register("roi-metrics", RoiMetricViewSet, basename="roi-metric")
router.register("telemetry", TelemetryEventViewSet, basename="telemetry-event")

urlpatterns = router.urls
