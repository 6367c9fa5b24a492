"""Error pages in the API's JSON shape for requests that never reach a DRF view: an unknown path
under ``/api/`` or ``/v1/``, a body over its endpoint's size limit, and the 400/403/500 pages
Django renders itself. Clients of the API and the gateway parse ``{"error": {...}}``; an HTML page
is as good as no answer to them. Everywhere else (the admin, the site) Django's pages stay."""

from django.conf import settings
from django.http import HttpResponsePermanentRedirect, JsonResponse
from django.urls import Resolver404, resolve
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt

from .errors import error_body, gateway_error_body

API_PREFIXES = ("/api/", "/v1/")


def _is_api(request) -> bool:
    return request.path_info.startswith(API_PREFIXES)


def _json_error(request, status: int, code: str, message: str, details: dict | None = None) -> JsonResponse:
    body = gateway_error_body(error_body(code, message, details), status, request.path_info)
    return JsonResponse(body, status=status)


def request_body_refusal(request, view_func) -> JsonResponse | None:
    """413 when the declared body is larger than the API view takes: its ``max_request_bytes``,
    else ``API_MAX_REQUEST_BYTES``. Checked before anything reads the body, so a 100 MB upload to
    an endpoint that needs a few kilobytes is refused unread. (Without a ``Content-Length`` a WSGI
    request body is read as empty, so the header is the whole story.) Views that are not DRF's
    keep Django's own limits (``DATA_UPLOAD_MAX_MEMORY_SIZE``)."""
    view_class = getattr(view_func, "cls", None)
    if view_class is None:
        return None
    limit = getattr(view_class, "max_request_bytes", None) or settings.API_MAX_REQUEST_BYTES
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None  # Django reads no body then
    if length <= limit:
        return None
    return _json_error(
        request,
        413,
        "request_too_large",
        f"The request body is {length} bytes; this endpoint takes at most {limit}.",
        {"max_bytes": limit},
    )


@csrf_exempt
def api_not_found(request, *args, **kwargs):
    """The last URL pattern under ``/api/`` and ``/v1/``: JSON, whatever the method. A path
    that exists with a trailing slash (``/api/docs``) is redirected as ``APPEND_SLASH`` would,
    since this pattern now matches where CommonMiddleware would have looked."""
    if settings.APPEND_SLASH and request.method in ("GET", "HEAD") and not request.path_info.endswith("/"):
        try:
            match = resolve(request.path_info + "/")
        except Resolver404:
            match = None
        if match is not None and match.func is not api_not_found:
            return HttpResponsePermanentRedirect(request.get_full_path(force_append_slash=True))
    return _json_error(request, 404, "not_found", "No API endpoint at this path.", {"path": request.path_info[:200]})


def bad_request(request, exception=None):
    if _is_api(request):
        return _json_error(request, 400, "malformed_request", "The request is malformed.")
    return defaults.bad_request(request, exception)


def permission_denied(request, exception=None):
    if _is_api(request):
        return _json_error(request, 403, "permission_denied", "You do not have permission to perform this action.")
    return defaults.permission_denied(request, exception)


def not_found(request, exception=None):
    if _is_api(request):
        return api_not_found(request)
    return defaults.page_not_found(request, exception)


def server_error(request):
    if _is_api(request):
        return _json_error(request, 500, "server_error", "The server failed to answer; the error was logged.")
    return defaults.server_error(request)
