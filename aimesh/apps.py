from django.apps import AppConfig


class AimeshConfig(AppConfig):
    name = "aimesh"
    verbose_name = "AI mesh"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from celaest.hooks import serving_loop_stop_observers

        from . import providers, routing, services  # noqa: F401 - the read caches of the key pool and the models (and their receivers)

        serving_loop_stop_observers.connect(providers.clients_close)
