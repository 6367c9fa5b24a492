"""Real Celery processes for tests: the environment that points them at the test database (the
test run's own, ``test_...``), Redis and broker, with local webhook endpoints allowed."""

import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings
from django.db import connection

PROJECT = Path(__file__).resolve().parents[1]


def worker_environment(tmp_path, **extra: str) -> dict[str, str]:
    database = settings.DATABASES["default"]
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "celaest.settings.test",
        "DATABASE_URL": (
            f"postgres://{database['USER']}:{database.get('PASSWORD') or ''}@{database['HOST']}:{database['PORT']}"
            f"/{connection.settings_dict['NAME']}"
        ),
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "WEBHOOK_ALLOWED_HOSTS": "127.0.0.1",
        "WEBHOOK_REQUIRE_HTTPS": "false",
        "CELAEST_VAR_DIR": str(tmp_path),
        **extra,
    }


def celery_start(tmp_path, *arguments: str, **extra_env: str) -> subprocess.Popen:
    """``celery -A celaest <arguments>`` in its own session (stop it with ``os.killpg``)."""
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "celaest", *arguments, "-l", "WARNING"],
        cwd=PROJECT, env=worker_environment(tmp_path, **extra_env), stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
