"""REST routes of this app under /api/v1/."""

from celaest.api.routers import ApiRouter

from .views import AuditLogViewSet, SystemEventViewSet

router = ApiRouter()
router.register("audit-logs", AuditLogViewSet, basename="audit-log")
router.register("system-events", SystemEventViewSet, basename="system-event")

urlpatterns = router.urls
