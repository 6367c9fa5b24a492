"""Production settings: refuse to start without a real secret key, allowed hosts, encryption keys,
license signing keys and an e-mail server."""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F401,F403
from .base import INSECURE_DEV_SECRET_KEY, env

DEBUG = False
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY or SECRET_KEY == INSECURE_DEV_SECRET_KEY or len(SECRET_KEY) < 50:
    raise ImproperlyConfigured("SECRET_KEY must be set to a random value of at least 50 characters.")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[])
if not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must list the host names this deployment serves.")
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", default=[])
if not FIELD_ENCRYPTION_KEYS:
    raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS must hold at least one Fernet key.")
# Every server must sign offline license certificates with the same managed key.
LICENSE_SIGNING_KEYS = env.list("LICENSE_SIGNING_KEYS", default=[])
if not LICENSE_SIGNING_KEYS or not all(":" in entry for entry in LICENSE_SIGNING_KEYS):
    raise ImproperlyConfigured(
        "LICENSE_SIGNING_KEYS must hold at least one kid:key entry (python manage.py generate_license_signing_key)."
    )
# Invoices are e-mailed: without EMAIL_URL they would only be printed to a worker's log.
if not env.str("EMAIL_URL", default=""):
    raise ImproperlyConfigured("EMAIL_URL must name the e-mail server invoices are sent through (smtp+tls://...).")

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
X_FRAME_OPTIONS = "DENY"
