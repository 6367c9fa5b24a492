"""The admin site: Unfold's theme, CELAEST's name, and the one relaxation of the content policy it needs.

Unfold draws its menus, tabs, dark mode and dialogs with Alpine.js, which compiles the expressions
written in ``x-*`` attributes with the ``Function`` constructor: a policy without
``'unsafe-eval'`` stops every one of them (the page renders, but nothing opens or closes). Alpine's
CSP build cannot stand in: it reads no globals (``localStorage``) and parses no arrow functions,
both of which Unfold's templates use. So admin pages, and only they, add ``'unsafe-eval'`` to
``script-src``; ``'self'`` still limits scripts to files this server serves, with no inline script
and no third party, and the API, its docs and every other page keep the strict policy. An injected
``x-*`` attribute would be the way in: Django escapes every value it writes into a page, attribute
values included.

Installed as ``celaest.adminsite.AdminConfig`` in place of ``django.contrib.admin`` (and Unfold's
``BasicAppConfig``, which leaves the site alone), so ``admin.site`` is a ``CelaestAdminSite``.
"""

from functools import wraps

from django.contrib.admin.apps import AdminConfig as DjangoAdminConfig
from unfold.sites import UnfoldAdminSite

#: What admin pages add to the content policy (above), and nothing else.
ADMIN_CSP_UPDATE = {"script-src": ["'unsafe-eval'"]}


def _with_admin_policy(view):
    @wraps(view)
    def wrapped(*args, **kwargs):
        response = view(*args, **kwargs)
        response._csp_update = ADMIN_CSP_UPDATE  # read by django-csp's middleware (csp_update)
        return response

    return wrapped


class CelaestAdminSite(UnfoldAdminSite):
    site_header = "CELAEST"
    site_title = "CELAEST back office"
    index_title = "Dashboard"

    def admin_view(self, view, cacheable=False):
        return _with_admin_policy(super().admin_view(view, cacheable))

    def login(self, request, extra_context=None):
        return _with_admin_policy(super().login)(request, extra_context)


class AdminConfig(DjangoAdminConfig):
    default_site = "celaest.adminsite.CelaestAdminSite"
