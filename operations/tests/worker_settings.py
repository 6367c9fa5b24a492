"""Settings for the Celery worker subprocesses of the worker tests: the test settings, with the
broker redelivering unacknowledged messages after seconds instead of an hour, and a task claim
going stale just before that (as in production, where the stale time is below the visibility
timeout)."""

import os

from celaest.settings.test import *  # noqa: F401,F403

# kombu 5.7 scans for unacknowledged messages every interval × throttle seconds (100 s by
# default); scan every 2 s here so the redelivery happens within the test.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": 6,
    "unacked_restore_interval": 2,
    "unacked_restore_throttle": 1,
}
AI_TASK_STALE_SECONDS = int(os.environ.get("AI_TASK_STALE_SECONDS", "4"))
