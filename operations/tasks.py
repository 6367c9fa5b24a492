"""Celery jobs of the operations app: thin wrappers taking IDs (the work is in services)."""

from celery import shared_task

from operations import services

# acks_late: a worker killed mid-task leaves the message to be redelivered; the services claim
# each task with a conditional update, so a redelivery never runs or counts a task twice.
_RELIABLE = {"acks_late": True, "reject_on_worker_lost": True, "soft_time_limit": 540, "time_limit": 600}


@shared_task(name="operations.run_task", **_RELIABLE)
def run_task(task_id: str) -> str | None:
    task = services.task_execute(task_id=task_id)
    return task.status if task is not None else None


@shared_task(name="operations.run_batch_chunk", **_RELIABLE)
def run_batch_chunk(batch_id: str, start: int, stop: int) -> int:
    return services.batch_run_chunk(batch_id=batch_id, start=start, stop=stop)


@shared_task(name="operations.recover_stale_tasks", ignore_result=True, time_limit=120, soft_time_limit=100)
def recover_stale_tasks() -> dict:
    """Run again, or close, the tasks whose worker died mid-task, and send again the messages of
    tasks queued too long ago (nothing else comes back to them)."""
    return services.tasks_recover_stale()
