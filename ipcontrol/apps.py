from django.apps import AppConfig


class IpcontrolConfig(AppConfig):
    name = "ipcontrol"
    verbose_name = "IP control"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from . import snapshots  # noqa: F401 - connects the receivers that retire license snapshots
