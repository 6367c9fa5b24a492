"""REST routes of the IP control app under /api/v1/."""

from django.urls import re_path

from celaest.api.routers import ApiRouter

from .public import (
    LicenseActivateView,
    LicenseCheckoutView,
    LicenseDeactivateView,
    LicensePublicKeyView,
    LicenseValidateView,
)
from .views import LicenseCollisionViewSet, LicenseIpBindingViewSet, LicenseValidationViewSet

router = ApiRouter()
router.register("license-bindings", LicenseIpBindingViewSet, basename="license-binding")
router.register("license-validations", LicenseValidationViewSet, basename="license-validation")
router.register("license-collisions", LicenseCollisionViewSet, basename="license-collision")

urlpatterns = [
    re_path(r"^licenses/validate/?$", LicenseValidateView.as_view(), name="license-validate"),
    re_path(r"^licenses/activate/?$", LicenseActivateView.as_view(), name="license-activate"),
    re_path(r"^licenses/deactivate/?$", LicenseDeactivateView.as_view(), name="license-deactivate"),
    re_path(r"^licenses/checkout/?$", LicenseCheckoutView.as_view(), name="license-checkout"),
    re_path(r"^licenses/public-key/?$", LicensePublicKeyView.as_view(), name="license-public-key"),
    *router.urls,
]
