"""Roles and API key scopes.

A viewset names its ``scope_resource`` (``licenses``, ``webhooks``...) and the roles that may read
and write it. A user's role decides what they may do; an API key's scopes
(``<resource>:read``, ``<resource>:write``, or ``*``) can only narrow that further.
"""

from rest_framework import permissions

OWNER, ADMIN, MEMBER, VIEWER = "owner", "admin", "member", "viewer"
ALL_ROLES = frozenset({OWNER, ADMIN, MEMBER, VIEWER})
WRITER_ROLES = frozenset({OWNER, ADMIN, MEMBER})
MANAGER_ROLES = frozenset({OWNER, ADMIN})
BILLING_ROLES = frozenset({OWNER})


def is_read(request) -> bool:
    return request.method in permissions.SAFE_METHODS


def api_key_allows(scopes, resource: str, *, write: bool) -> bool:
    """Whether a key holding ``scopes`` may read (or write) ``resource``. Write implies read."""
    scopes = set(scopes or [])
    if "*" in scopes or f"{resource}:write" in scopes:
        return True
    return not write and f"{resource}:read" in scopes


class RolePermission(permissions.BasePermission):
    """The caller's organization role must be among the view's ``read_roles``/``write_roles``."""

    message = "Your role does not allow this action."

    def has_permission(self, request, view):
        user = request.user
        if user.is_staff:
            return True
        roles = view.read_roles if is_read(request) else view.write_roles
        return user.role in roles


def api_key_scope_allows(request, view) -> bool:
    """Whether the request may go on as far as API key scopes are concerned: a request not made
    with an API key always; one made with a key if it holds a scope for ``view.scope_resource``.
    Fails closed: a view that names no resource is refused to every key, even ``*``. A view with
    ``key_reads_open`` (who am I) may be read with any key."""
    scopes = getattr(request.auth, "api_key_scopes", None)
    if scopes is None:  # not an API key request
        return True
    if getattr(view, "key_reads_open", False) and is_read(request):
        return True
    resource = getattr(view, "scope_resource", "")
    return bool(resource) and api_key_allows(scopes, resource, write=not is_read(request))


class ApiKeyScopePermission(permissions.BasePermission):
    """Requests authenticated by an API key need a scope for the view's resource. The API bases
    (``celaest.api.views``, ``celaest.api.viewsets``) check it on every request by themselves;
    views outside them list this permission."""

    message = "This API key lacks the scope for this resource."

    def has_permission(self, request, view):
        return api_key_scope_allows(request, view)


class IsStaff(permissions.BasePermission):
    message = "Platform staff only."

    def has_permission(self, request, view):
        return bool(request.user and request.user.is_authenticated and request.user.is_staff)


class StaffWritesOthersRead(permissions.BasePermission):
    """Catalogue resources: anyone allowed in may read, only staff may write."""

    message = "Only platform staff can change the catalogue."

    def has_permission(self, request, view):
        return is_read(request) or bool(request.user and request.user.is_staff)
