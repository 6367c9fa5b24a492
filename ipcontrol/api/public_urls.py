"""Routes of the public license endpoints under /api/v1/. The root URLconf lists them ahead of
the app routers: installed software calls them most, so they are resolved first."""

from django.urls import re_path

from .public import (
    LicenseActivateView,
    LicenseCheckoutView,
    LicenseDeactivateView,
    LicenseFileView,
    LicenseHeartbeatView,
    LicensePublicKeyView,
    LicenseValidateView,
)
from .token import LicenseTokenMachineDeactivateView, LicenseTokenMachineView

urlpatterns = [
    re_path(r"^licenses/validate/?$", LicenseValidateView.as_view(), name="license-validate"),
    re_path(r"^licenses/activate/?$", LicenseActivateView.as_view(), name="license-activate"),
    re_path(r"^licenses/deactivate/?$", LicenseDeactivateView.as_view(), name="license-deactivate"),
    re_path(r"^licenses/heartbeat/?$", LicenseHeartbeatView.as_view(), name="license-heartbeat"),
    re_path(r"^licenses/license-file/?$", LicenseFileView.as_view(), name="license-file"),
    re_path(r"^licenses/checkout/?$", LicenseCheckoutView.as_view(), name="license-checkout"),
    re_path(r"^licenses/machine/?$", LicenseTokenMachineView.as_view(), name="license-token-machine"),
    re_path(
        r"^licenses/machine/deactivate/?$",
        LicenseTokenMachineDeactivateView.as_view(),
        name="license-token-machine-deactivate",
    ),
    re_path(r"^licenses/public-key/?$", LicensePublicKeyView.as_view(), name="license-public-key"),
]
