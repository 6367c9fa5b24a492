from django.apps import AppConfig


class OperationsConfig(AppConfig):
    name = "operations"
    verbose_name = "Operations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Registers the tasks: the services queue operations.run_task and run_batch_chunk by name.
        from . import tasks  # noqa: F401
