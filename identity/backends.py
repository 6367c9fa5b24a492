"""Authentication backend with brute-force protection for password logins (admin, browsable API).

After ``LOGIN_FAILURE_LIMIT`` failed attempts for one email — or ``LOGIN_FAILURE_LIMIT_PER_IP``
from one address — within ``LOGIN_FAILURE_WINDOW_SECONDS``, password logins for it are refused
until the window passes, even with the right password. Counters live in the shared cache, so
every server process agrees.
"""

from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.core.cache import cache
from django.core.exceptions import PermissionDenied

from celaest.net import client_ip


def _client_ip(request) -> str:
    """The caller behind any trusted proxy: throttling the proxy's address would lock out everyone."""
    return (client_ip(request) if request is not None else None) or "unknown"


def _keys(request, username: str) -> tuple[str, str]:
    return f"login-fail:user:{(username or '').strip().lower()}", f"login-fail:ip:{_client_ip(request)}"


def login_is_locked(request, username: str) -> bool:
    user_key, ip_key = _keys(request, username)
    counts = cache.get_many([user_key, ip_key])
    return counts.get(user_key, 0) >= settings.LOGIN_FAILURE_LIMIT or (
        counts.get(ip_key, 0) >= settings.LOGIN_FAILURE_LIMIT_PER_IP
    )


def _count_failure(request, username: str) -> None:
    for key in _keys(request, username):
        if not cache.add(key, 1, timeout=settings.LOGIN_FAILURE_WINDOW_SECONDS):
            try:
                cache.incr(key)
            except ValueError:
                cache.add(key, 1, timeout=settings.LOGIN_FAILURE_WINDOW_SECONDS)


class ThrottledModelBackend(ModelBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        username = username or kwargs.get(self._username_field())
        if login_is_locked(request, username):
            _count_failure(request, username)
            raise PermissionDenied("Too many failed logins; try again later.")
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None:
            _count_failure(request, username)
        else:
            cache.delete(_keys(request, username)[0])
        return user

    @staticmethod
    def _username_field() -> str:
        from django.contrib.auth import get_user_model

        return get_user_model().USERNAME_FIELD
