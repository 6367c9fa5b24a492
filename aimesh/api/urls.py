"""REST routes of this app under /api/v1/."""

from celaest.api.routers import ApiRouter

from .views import AIApiKeyViewSet, AIModelViewSet, PromptViewSet

router = ApiRouter()
router.register("ai-models", AIModelViewSet, basename="ai-model")
router.register("prompts", PromptViewSet, basename="prompt")
router.register("ai-keys", AIApiKeyViewSet, basename="ai-key")

urlpatterns = router.urls
