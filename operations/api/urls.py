"""REST routes of this app under /api/v1/."""

from django.urls import re_path

from celaest.api.routers import ApiRouter

from .ai_license import ApiKeyLicenseView, OrganizationAILicenseView
from .views import ProcessedTaskViewSet, TaskBatchViewSet, TaskCollectionView

router = ApiRouter()
router.register("tasks", ProcessedTaskViewSet, basename="task")
router.register("batches", TaskBatchViewSet, basename="batch")

urlpatterns = [
    # Before the router's: POST runs a task as a coroutine (GET is the viewset's list).
    re_path(r"^tasks/?$", TaskCollectionView.as_view(), name="task-run"),
    # Which license pays for AI gateway calls (operations.ai_licenses).
    re_path(r"^ai-license/?$", OrganizationAILicenseView.as_view(), name="ai-license"),
    re_path(r"^ai-license/keys/(?P<key_id>[0-9a-fA-F-]{36})/?$", ApiKeyLicenseView.as_view(), name="ai-license-key"),
    *router.urls,
]
