"""REST routes of the IP control app under /api/v1/ (the public license endpoints are in
public_urls.py)."""

from django.urls import re_path

from celaest.api.routers import ApiRouter

from .views import LicenseCollisionViewSet, LicenseIpBindingViewSet, LicenseValidationViewSet, OfflineActivationView

router = ApiRouter()
router.register("license-bindings", LicenseIpBindingViewSet, basename="license-binding")
router.register("license-validations", LicenseValidationViewSet, basename="license-validation")
router.register("license-collisions", LicenseCollisionViewSet, basename="license-collision")

urlpatterns = [
    re_path(r"^licenses/offline-activations/?$", OfflineActivationView.as_view(), name="license-offline-activation"),
    *router.urls,
]
