"""REST routes of the settings app under /api/v1/."""

from django.urls import re_path

from celaest.api.routers import ApiRouter

from .views import (
    ApiKeyViewSet,
    EvaluatedFlagsView,
    FeatureFlagViewSet,
    SystemConfigViewSet,
    UserSessionViewSet,
    WebhookDeliveryViewSet,
    WebhookViewSet,
)

router = ApiRouter()
router.register("sessions", UserSessionViewSet, basename="session")
router.register("api-keys", ApiKeyViewSet, basename="api-key")
router.register("webhooks", WebhookViewSet, basename="webhook")
router.register("webhook-deliveries", WebhookDeliveryViewSet, basename="webhook-delivery")
router.register("system-config", SystemConfigViewSet, basename="system-config")
router.register("feature-flags", FeatureFlagViewSet, basename="feature-flag")

urlpatterns = [
    re_path(r"^flags/?$", EvaluatedFlagsView.as_view(), name="evaluated-flags"),
    *router.urls,
]
