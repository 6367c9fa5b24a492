"""The request context the audit trail reads: who is asking, from where, through what.

``RequestContextMiddleware`` makes the current request available to code far from the view
(services, signal receivers) through a context variable, so ``audit_record`` can fill in the
user, IP address, user agent and source (admin, api, web) without every caller passing them.
Outside a request (Celery, management commands) there is no context.
"""

from contextvars import ContextVar
from dataclasses import dataclass

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.http import HttpRequest
from django.urls import ResolverMatch, resolve

from .error_views import request_body_refusal
from .net import client_ip

_current: ContextVar["RequestContext | None"] = ContextVar("celaest_request_context", default=None)


def request_source(request: HttpRequest) -> str:
    path = request.path_info or ""
    if path.startswith("/api/"):
        return "api"
    if path.startswith("/admin/"):
        return "admin"
    return "web"


@dataclass
class RequestContext:
    request: HttpRequest
    ip_address: str | None
    user_agent: str
    source: str
    #: set once a service has audited a change in this request, so the generic API audit of the
    #: same write does not add a second row
    change_audited: bool = False

    @property
    def user(self):
        # DRF sets the authenticated user on the underlying HttpRequest too, so API callers
        # (API key, JWT) are seen here once the view has authenticated them.
        user = getattr(self.request, "user", None)
        return user if user is not None and user.is_authenticated else None

    @classmethod
    def from_request(cls, request: HttpRequest) -> "RequestContext":
        return cls(
            request=request,
            ip_address=client_ip(request),
            user_agent=request.META.get("HTTP_USER_AGENT", "")[:500],
            source=request_source(request),
        )


def current_request_context() -> RequestContext | None:
    return _current.get()


class _BothModes:
    """A middleware that runs natively in both modes: under ASGI it is a coroutine, so a request
    to an async view passes it without a thread (``AIHandler`` serves AI work through these only)."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request):
        if self.is_async:
            return self.__acall__(request)
        return self.get_response(request)

    async def __acall__(self, request):
        return await self.get_response(request)


class RequestContextMiddleware(_BothModes):
    def __call__(self, request):
        if self.is_async:
            return self.__acall__(request)
        token = _current.set(RequestContext.from_request(request))
        try:
            return self.get_response(request)
        finally:
            _current.reset(token)

    async def __acall__(self, request):
        token = _current.set(RequestContext.from_request(request))
        try:
            return await self.get_response(request)
        finally:
            _current.reset(token)


class LeanPathMiddleware:
    """Serves ``settings.LEAN_PATHS`` straight from their views, skipping the middleware listed
    after this one.

    Those are the public license endpoints that installed software calls many times a day: no
    session, user, CSRF token, messages or content policy applies to them, and that middleware
    costs as much as the validation itself. The middleware listed before this one (security
    headers, the request context) still applies. Paths match with or without a trailing slash,
    and each resolves once (resolving costs 14 µs a request, 4% of a validation).
    """

    def __init__(self, get_response):
        self.get_response = get_response
        self.paths = frozenset(path.rstrip("/") for path in settings.LEAN_PATHS)
        self.matches: dict[str, ResolverMatch] = {}

    def __call__(self, request):
        path = request.path_info
        if path.rstrip("/") not in self.paths:
            return self.get_response(request)
        match = self.matches.get(path)
        if match is None:
            match = self.matches[path] = resolve(path)
        request.resolver_match = match
        return request_body_refusal(request, match.func) or match.func(request, *match.args, **match.kwargs)


class RequestBodyLimitMiddleware(_BothModes):
    """A body larger than its API endpoint takes is answered 413 before the view reads it
    (``request_body_refusal``; the lean paths check it themselves)."""

    def __init__(self, get_response):
        super().__init__(get_response)
        if self.is_async:
            # A coroutine, so that Django does not run it as a synchronous step on another thread.
            self.process_view = self._process_view_async

    def process_view(self, request, view_func, view_args, view_kwargs):
        return request_body_refusal(request, view_func)

    async def _process_view_async(self, request, view_func, view_args, view_kwargs):
        return request_body_refusal(request, view_func)
