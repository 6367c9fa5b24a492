from django.apps import AppConfig


class SettingsAppConfig(AppConfig):
    name = "settings_app"
    verbose_name = "Settings and system"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from . import events, receivers, selectors  # noqa: F401 - login/logout receivers, read caches
