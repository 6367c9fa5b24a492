"""REST routes of this app under /api/v1/."""

from celaest.api.routers import ApiRouter

from .views import ProcessedTaskViewSet, TaskBatchViewSet

router = ApiRouter()
router.register("tasks", ProcessedTaskViewSet, basename="task")
router.register("batches", TaskBatchViewSet, basename="batch")

urlpatterns = router.urls
