from django.apps import AppConfig


class AimeshConfig(AppConfig):
    name = "aimesh"
    verbose_name = "AI mesh"
    default_auto_field = "django.db.models.BigAutoField"
