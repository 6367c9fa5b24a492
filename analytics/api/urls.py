"""REST routes of this app under /api/v1/."""

from celaest.api.routers import ApiRouter

router = ApiRouter()

urlpatterns = router.urls
