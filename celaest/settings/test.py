"""Settings for the test suite: the base settings plus fast hashing.

The suite runs against the real PostgreSQL and Redis that ``bin/test`` starts (``DATABASE_URL``,
``REDIS_URL``); it never mocks them, so it refuses to run without them.
"""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F401,F403
from .base import DATABASES, REDIS_URL

if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql" or not REDIS_URL:
    raise ImproperlyConfigured(
        "The test suite needs PostgreSQL and Redis: run it with bin/test, or set DATABASE_URL "
        "(postgres://...) and REDIS_URL (redis://...)."
    )

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
DATABASES["default"]["CONN_MAX_AGE"] = 0

# Serve static files (Swagger UI, admin) straight from the installed packages, no collectstatic.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
