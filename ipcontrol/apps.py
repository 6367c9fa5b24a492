from django.apps import AppConfig


class IpcontrolConfig(AppConfig):
    name = "ipcontrol"
    verbose_name = "IP control"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # the receivers that retire license snapshots, and the tasks (the buffer asks for
        # ipcontrol.flush_validations by name)
        from . import snapshots, tasks  # noqa: F401
