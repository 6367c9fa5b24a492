from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Registers the tasks: the services queue ``billing.invoice_send`` by name.
        from . import tasks  # noqa: F401
