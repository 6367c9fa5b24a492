from django.apps import AppConfig


class OperationsConfig(AppConfig):
    name = "operations"
    verbose_name = "Operations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Registers the tasks: the services queue operations.run_task and run_batch_chunk by name.
        from licensing.meter import METER_RECORDS

        from . import tasks  # noqa: F401
        from .call_records import TASK_RECORDS

        # The gateway's tasks travel with their counts through the usage meter's journal.
        METER_RECORDS.connect(TASK_RECORDS)
