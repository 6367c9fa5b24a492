"""REST routes of this app under /api/v1/."""

from django.urls import re_path

from celaest.api.routers import ApiRouter

from .views import ProcessedTaskViewSet, TaskBatchViewSet, TaskCollectionView

router = ApiRouter()
router.register("tasks", ProcessedTaskViewSet, basename="task")
router.register("batches", TaskBatchViewSet, basename="batch")

urlpatterns = [
    # Before the router's: POST runs a task as a coroutine (GET is the viewset's list).
    re_path(r"^tasks/?$", TaskCollectionView.as_view(), name="task-run"),
    *router.urls,
]
