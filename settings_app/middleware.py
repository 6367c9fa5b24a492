"""Ends a revoked login at once: the next request of a revoked session is logged out.

Each request costs one cache read (the revocation marker ``user_session_revoke`` sets); at most
once a minute per session the row's ``last_activity_at`` is written, and that write also finds a
session revoked while the cache was unavailable.
"""

from django.contrib.auth import logout
from django.utils.deprecation import MiddlewareMixin

from .services import sessions


class UserSessionMiddleware(MiddlewareMixin):
    # MiddlewareMixin: it runs under ASGI too (AI_MIDDLEWARE), as a short synchronous step.
    def process_request(self, request):
        session = getattr(request, "session", None)
        session_key = getattr(session, "session_key", None)
        user = getattr(request, "user", None)
        if session_key and user is not None and user.is_authenticated:
            if not sessions.user_session_touch(session_key=session_key):
                logout(request)
