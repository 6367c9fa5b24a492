"""Login sessions: a ``user_sessions`` row per login (keyed by a hash of the session key), its
activity recorded at most once a minute, revocation that logs the session out at its next
request, and the cleanup of old history."""

from datetime import timedelta

from django.core.cache import cache
from django.utils import timezone

from celaest import crypto
from identity.models import User
from settings_app.models import UserSession

_SESSION_TOUCH_SECONDS = 60
_REVOKED_MARKER_SECONDS = 14 * 24 * 3600  # longer than a session lives


def _revoked_marker(token_hash: str) -> str:
    return f"session-revoked:{token_hash}"


def _touch_marker(token_hash: str) -> str:
    return f"session-touched:{token_hash}"


def _device_info(user_agent: str) -> dict:
    """A rough label for the sessions list ("Firefox on Linux"); the full agent is kept too."""
    agent = user_agent.lower()
    browser = next(
        (name for marker, name in (("edg/", "Edge"), ("firefox/", "Firefox"), ("chrome/", "Chrome"),
                                   ("safari/", "Safari"), ("curl/", "curl"), ("python", "Python")) if marker in agent),
        "Other",
    )  # fmt: skip
    system = next(
        (name for marker, name in (("android", "Android"), ("iphone", "iOS"), ("ipad", "iOS"), ("windows", "Windows"),
                                   ("mac os", "macOS"), ("linux", "Linux")) if marker in agent),
        "Other",
    )  # fmt: skip
    return {"browser": browser, "os": system, "mobile": "mobile" in agent or system in ("Android", "iOS")}


def user_session_start(*, user: User, request) -> UserSession | None:
    """Record a login: one row per Django session, keyed by a hash of the session key."""
    session = getattr(request, "session", None)
    if session is None:
        return None
    if session.session_key is None:
        session.save()
    user_agent = request.META.get("HTTP_USER_AGENT", "")[:500]
    token_hash = crypto.hash_secret(session.session_key)
    row, _ = UserSession.objects.update_or_create(
        session_token=token_hash,
        defaults={
            "user": user,
            "ip_address": request.META.get("REMOTE_ADDR") or None,
            "user_agent": user_agent,
            "device_info": _device_info(user_agent),
            "is_active": True,
            "revoked_at": None,
            "last_activity_at": timezone.now(),
            "expires_at": session.get_expiry_date(),
        },
    )
    cache.set(_touch_marker(token_hash), 1, timeout=_SESSION_TOUCH_SECONDS)  # just written
    return row


def user_session_end(*, session_key: str) -> UserSession | None:
    """A logout: the row stays in the user's history, inactive."""
    row = UserSession.objects.filter(session_token=crypto.hash_secret(session_key)).first()
    return user_session_revoke(session=row) if row is not None else None


def user_session_touch(*, session_key: str) -> bool:
    """Whether the login behind ``session_key`` may go on. Records its activity at most once a
    minute. A session with no row (started before sessions were recorded) may go on."""
    token_hash = crypto.hash_secret(session_key)
    if cache.get(_revoked_marker(token_hash)):
        return False
    if not cache.add(_touch_marker(token_hash), 1, timeout=_SESSION_TOUCH_SECONDS):
        return True
    now = timezone.now()
    touched = UserSession.objects.filter(session_token=token_hash, is_active=True, expires_at__gt=now).update(
        last_activity_at=now
    )
    return bool(touched) or not UserSession.objects.filter(session_token=token_hash).exists()


def user_session_revoke(*, session: UserSession) -> UserSession:
    """End a login: the row is kept (for the user's security history), marked inactive, and the
    session's next request is logged out (``UserSessionMiddleware``)."""
    if session.is_active or session.revoked_at is None:
        session.is_active = False
        session.revoked_at = session.revoked_at or timezone.now()
        session.save(update_fields=["is_active", "revoked_at", "updated_at"])
    cache.set(_revoked_marker(session.session_token), 1, timeout=_REVOKED_MARKER_SECONDS)
    return session


def user_sessions_revoke_others(*, user: User, current_session_key: str | None) -> int:
    """Revoke every live session of ``user`` but the one making this request."""
    others = UserSession.objects.filter(user=user, is_active=True)
    if current_session_key:
        others = others.exclude(session_token=crypto.hash_secret(current_session_key))
    sessions = list(others)
    for session in sessions:
        user_session_revoke(session=session)
    return len(sessions)


#: Ended sessions stay listed (the user's security history) this long, then the cleanup deletes them.
SESSION_HISTORY_DAYS = 30


def user_sessions_clean_expired(*, history_days: int = SESSION_HISTORY_DAYS) -> int:
    """Mark expired sessions inactive, and delete those that ended more than ``history_days``
    ago. Returns the number deleted."""
    now = timezone.now()
    UserSession.objects.filter(is_active=True, expires_at__lte=now).update(is_active=False, updated_at=now)
    cutoff = now - timedelta(days=history_days)
    deleted, _ = UserSession.objects.filter(expires_at__lte=cutoff).delete()
    revoked, _ = UserSession.objects.filter(revoked_at__lte=cutoff).delete()
    return deleted + revoked
