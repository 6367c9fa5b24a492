"""REST routes of the IP control app under /api/v1/."""

from django.urls import re_path

from celaest.api.routers import ApiRouter

from .public import LicenseActivateView, LicenseDeactivateView, LicenseValidateView
from .views import LicenseCollisionViewSet, LicenseIpBindingViewSet, LicenseValidationViewSet

router = ApiRouter()
router.register("license-bindings", LicenseIpBindingViewSet, basename="license-binding")
router.register("license-validations", LicenseValidationViewSet, basename="license-validation")
router.register("license-collisions", LicenseCollisionViewSet, basename="license-collision")

urlpatterns = [
    re_path(r"^licenses/validate/?$", LicenseValidateView.as_view(), name="license-validate"),
    re_path(r"^licenses/activate/?$", LicenseActivateView.as_view(), name="license-activate"),
    re_path(r"^licenses/deactivate/?$", LicenseDeactivateView.as_view(), name="license-deactivate"),
    *router.urls,
]
