"""The back office: what staff see in the admin beyond the ModelAdmins (the dashboard on its index)."""

from django.apps import AppConfig


class BackofficeConfig(AppConfig):
    name = "backoffice"
    verbose_name = "Back office"

    def ready(self):
        from django.contrib import admin

        # Named on the site rather than overriding admin/index.html: an app's template of that
        # name would lose to django.contrib.admin's, which is listed first in INSTALLED_APPS.
        admin.site.index_template = "admin/backoffice/index.html"
