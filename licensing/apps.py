from django.apps import AppConfig


class LicensingConfig(AppConfig):
    name = "licensing"
    verbose_name = "Licensing"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from . import usage  # noqa: F401 - the read cache of organizations' licenses (and its receivers)
