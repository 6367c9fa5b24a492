"""Logins, logouts and failed logins (django.contrib.auth signals): a ``user_sessions`` row per
login, and an audit row for each. (System config and feature flags retire their cached copies by
themselves: their caches watch the tables, ``celaest.readcache.on_change``.)"""

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from audit.models import AuditLog
from audit.services import audit_record

from .services import sessions


@receiver(user_logged_in, dispatch_uid="settings_app.login")
def _on_login(sender, request, user, **kwargs):
    session = sessions.user_session_start(user=user, request=request) if request is not None else None
    audit_record(action=AuditLog.Action.LOGIN, resource=session or user, user=user)


@receiver(user_logged_out, dispatch_uid="settings_app.logout")
def _on_logout(sender, request, user, **kwargs):
    session_key = getattr(getattr(request, "session", None), "session_key", None)
    session = sessions.user_session_end(session_key=session_key) if session_key else None
    if user is not None:
        audit_record(action=AuditLog.Action.LOGOUT, resource=session or user, user=user)


@receiver(user_login_failed, dispatch_uid="settings_app.login_failed")
def _on_login_failed(sender, credentials, request=None, **kwargs):
    # Only who was tried: Django already masks the password, and nothing else is kept.
    attempted = credentials.get("username") or credentials.get("email") or ""
    audit_record(action=AuditLog.Action.LOGIN_FAILED, resource_type="identity.user", changes={"username": attempted})
