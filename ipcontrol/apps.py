from django.apps import AppConfig


class IpcontrolConfig(AppConfig):
    name = "ipcontrol"
    verbose_name = "IP control"
    default_auto_field = "django.db.models.BigAutoField"
