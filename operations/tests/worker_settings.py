"""Settings for the Celery worker subprocesses of the worker tests: the test settings, with the
broker redelivering unacknowledged messages after seconds instead of an hour, and a task claim
going stale just before that (as in production, where the stale time is below the visibility
timeout)."""

from celaest.settings.test import *  # noqa: F401,F403

CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 6}
AI_TASK_STALE_SECONDS = 4
