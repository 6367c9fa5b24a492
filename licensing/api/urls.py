"""REST routes of this app under /api/v1/."""

from celaest.api.routers import ApiRouter

from .views import LicenseTokenViewSet, LicenseUsageLogViewSet, LicenseViewSet, SubscriptionPlanViewSet

router = ApiRouter()
router.register("plans", SubscriptionPlanViewSet, basename="plan")
router.register("licenses", LicenseViewSet, basename="license")
router.register("license-usage", LicenseUsageLogViewSet, basename="license-usage")
router.register("license-tokens", LicenseTokenViewSet, basename="license-token")

urlpatterns = router.urls
