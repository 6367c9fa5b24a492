"""Root URL configuration: the admin, /api/v1/ (one include per app) and the API docs."""

from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView

from celaest import error_views, health

#: the CELAEST apps that serve a part of /api/v1/ (an ``api/urls.py`` with a router)
API_APPS = [app for app in settings.CELAEST_APPS if (Path(apps.get_app_config(app).path) / "api" / "urls.py").is_file()]

urlpatterns = [
    path("admin/", admin.site.urls),
    re_path(r"^health/live/?$", health.live, name="health-live"),
    re_path(r"^health/ready/?$", health.ready, name="health-ready"),
    # Public license endpoints (validate, activate, ...): the hottest API paths, resolved first.
    path("api/v1/", include("ipcontrol.api.public_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves its configuration as a script file: no inline script, CSP-clean.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    *[path("api/v1/", include(f"{app}.api.urls")) for app in API_APPS],
    # The OpenAI-compatible gateway lives at the root so clients use CELAEST as their base URL.
    path("", include("operations.api.gateway_urls")),
    # Anything else under the API's prefixes: a JSON 404, not Django's HTML page.
    re_path(r"^(?:api|v1)/", error_views.api_not_found),
]

handler400 = error_views.bad_request
handler403 = error_views.permission_denied
handler404 = error_views.not_found
handler500 = error_views.server_error
