"""Settings for the test suite: the base settings plus fast hashing.

The suite runs against the real PostgreSQL and Redis that ``bin/test`` starts (``DATABASE_URL``,
``REDIS_URL``); it never mocks them, so it refuses to run without them.
"""

import os
from urllib.parse import urlsplit, urlunsplit

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F401,F403
from .base import DATABASES, REDIS_URL

if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql" or not REDIS_URL:
    raise ImproperlyConfigured(
        "The test suite needs PostgreSQL and Redis: run it with bin/test, or set DATABASE_URL "
        "(postgres://...) and REDIS_URL (redis://...)."
    )

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Tests read the AI usage counters right after a call: the meter writes them through at once (the
# tests of writing behind turn this off).
LICENSE_METER_WRITE_THROUGH = True
DATABASES["default"]["CONN_MAX_AGE"] = 0

# Serve static files (Swagger UI, admin) straight from the installed packages, no collectstatic.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True

# Parallel runs (pytest-xdist): pytest-django gives each worker its own database; give each its
# own Redis database too, so one worker's cache.clear() or queued tasks never reach another's.
# Subprocesses a test starts (Celery workers) inherit the worker's REDIS_URL from the environment.
# The base URL is kept in the environment, so a subprocess that inherits both variables derives
# the same database instead of shifting it again.
_XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
if _XDIST_WORKER.startswith("gw"):
    REDIS_URL = os.environ.setdefault("CELAEST_TEST_REDIS_BASE_URL", REDIS_URL)
    _parts = urlsplit(REDIS_URL)
    _base_db = int(_parts.path.lstrip("/") or 0)
    REDIS_URL = urlunsplit(_parts._replace(path=f"/{_base_db + 1 + int(_XDIST_WORKER[2:])}"))
    os.environ["REDIS_URL"] = REDIS_URL
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
    CELERY_BROKER_URL = REDIS_URL
