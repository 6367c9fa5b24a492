"""One error hierarchy for domain failures, and the DRF exception handler that maps every error
to one stable JSON shape::

    {"error": {"code": "license_suspended", "message": "...", "details": {...}}}

Services raise ``DomainError`` subclasses; views never build error responses by hand.
"""

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError, IntegrityError
from django.db.models import ProtectedError, RestrictedError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response


class DomainError(Exception):
    """A business rule refused the request. Subclasses fix the HTTP status and default code."""

    status_code = status.HTTP_400_BAD_REQUEST
    code = "invalid_request"
    message = "The request cannot be processed."

    def __init__(self, message: str | None = None, *, code: str | None = None, details: dict | None = None):
        self.message = message or self.message
        self.code = code or self.code
        self.details = details or {}
        super().__init__(self.message)


class InvalidInput(DomainError):
    code = "invalid"


class NotFound(DomainError):
    status_code = status.HTTP_404_NOT_FOUND
    code = "not_found"
    message = "Not found."


class Forbidden(DomainError):
    status_code = status.HTTP_403_FORBIDDEN
    code = "permission_denied"
    message = "You do not have permission to perform this action."


class Conflict(DomainError):
    status_code = status.HTTP_409_CONFLICT
    code = "conflict"
    message = "The request conflicts with the current state."


class ImmutableRecord(Conflict):
    """The record is a legal document (an issued invoice): it is never edited or deleted, only
    moved through its lifecycle or credited (HTTP 409)."""

    code = "immutable_record"
    message = "This record can no longer be changed."


class PaymentRequired(DomainError):
    status_code = status.HTTP_402_PAYMENT_REQUIRED
    code = "payment_required"
    message = "An active license or subscription is required."


class LimitExceeded(DomainError):
    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    code = "limit_exceeded"
    message = "A usage limit has been reached."

    def __init__(self, message=None, *, code=None, details=None, retry_after: int | None = None):
        super().__init__(message, code=code, details=details)
        self.retry_after = retry_after


_DRF_CODES = {
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "rate_limited",
    exceptions.ParseError: "malformed_request",
    exceptions.ValidationError: "invalid",
}


def error_body(code: str, message: str, details: dict | None = None) -> dict:
    return {"error": {"code": code, "message": message, "details": details or {}}}


#: the gateway's error ``type`` for each status, in OpenAI's protocol and in Anthropic's
OPENAI_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "insufficient_quota",
    403: "permission_error",
    404: "not_found_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    429: "rate_limit_error",
}
ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
}
ANTHROPIC_PATHS = ("/v1/messages",)


def gateway_error_body(body: dict, status: int, path: str) -> dict:
    """An error body of the project's shape as the gateway's protocols want it on ``/v1/``: the
    OpenAI SDKs read ``error.type`` and ``error.param`` (added; ``param`` from ``details.param``,
    else the first invalid field), Anthropic's read ``{"type": "error", "error": {"type", ...}}``
    (on its paths). Other paths' bodies are returned as they are."""
    error = body.get("error") if isinstance(body, dict) else None
    if not path.startswith("/v1/") or not isinstance(error, dict):
        return body
    fallback = "api_error" if status >= 500 else "invalid_request_error"
    if path.startswith(ANTHROPIC_PATHS):
        error["type"] = ANTHROPIC_ERROR_TYPES.get(status, fallback)
        return {"type": "error", "error": error}
    error.setdefault("type", OPENAI_ERROR_TYPES.get(status, fallback))
    details = error.get("details") or {}
    param = details.get("param")
    if param is None and error.get("code") == "invalid" and details:
        param = next(iter(details))
    error.setdefault("param", param)
    return body


def _drf_code(exc: exceptions.APIException) -> str:
    for cls, code in _DRF_CODES.items():
        if isinstance(exc, cls):
            return code
    return getattr(exc, "default_code", "error")


def exception_handler(exc, context):
    """DRF's ``EXCEPTION_HANDLER``: every error, whatever raised it, in the one JSON shape."""
    if isinstance(exc, DomainError):
        response = Response(error_body(exc.code, exc.message, exc.details), status=exc.status_code)
        if isinstance(exc, LimitExceeded) and exc.retry_after is not None:
            response["Retry-After"] = str(exc.retry_after)
        return response
    if isinstance(exc, IntegrityError):
        # A constraint the validators could not see coming (a race, a soft-deleted duplicate).
        return Response(error_body("conflict", "This change conflicts with an existing record."), status=409)
    if isinstance(exc, DataError):
        # A value the database cannot represent or compare (an out-of-range number or offset).
        return Response(error_body("invalid", "A value in the request is out of the supported range."), status=400)
    if isinstance(exc, ProtectedError | RestrictedError):
        return Response(error_body("in_use", "This record is still referenced by other records."), status=409)
    if isinstance(exc, DjangoValidationError):
        details = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        exc = exceptions.ValidationError(details)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    from rest_framework.views import exception_handler as drf_exception_handler  # avoid an import cycle

    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # an unexpected error: let Django log it and answer 500
    if isinstance(exc, exceptions.ValidationError):
        details = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        response.data = error_body("invalid", "The request is invalid.", details)
    else:
        detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
        response.data = error_body(_drf_code(exc), str(detail))
    return response
