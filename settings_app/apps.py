from django.apps import AppConfig


class SettingsAppConfig(AppConfig):
    name = "settings_app"
    verbose_name = "Settings and system"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # login/logout receivers, read caches, and the tasks the outbox queues by name
        from . import events, receivers, selectors, tasks  # noqa: F401
