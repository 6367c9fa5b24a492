"""Settings shared by every environment, read through django-environ.

Every variable is listed in ``.env.example`` with its default and meaning. With no environment
at all CELAEST runs on SQLite and an embedded (filesystem) Celery broker, so a first run needs
nothing but Python. ``DATABASE_URL`` switches to PostgreSQL, ``REDIS_URL`` to Redis for the
broker, the cache and rate-limit counters.
"""

from importlib.util import find_spec
from pathlib import Path

import environ
from celery.schedules import crontab
from django.templatetags.static import static

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
ENV_FILE = env.str("CELAEST_ENV_FILE", default=str(BASE_DIR / ".env"))
if Path(ENV_FILE).is_file():
    environ.Env.read_env(ENV_FILE)

# Local state of the embedded default (SQLite file, broker folders, file cache).
VAR_DIR = Path(env.str("CELAEST_VAR_DIR", default=str(BASE_DIR / "var")))

DEBUG = env.bool("DEBUG", default=True)
# The development key is public on purpose; production settings refuse it.
INSECURE_DEV_SECRET_KEY = "django-insecure-celaest-development-only-key-do-not-use-in-production"  # noqa: S105
SECRET_KEY = env.str("SECRET_KEY", default=INSECURE_DEV_SECRET_KEY)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# CELAEST's own apps, bottom of the dependency order first (the order import-linter enforces:
# [tool.importlinter] in pyproject.toml). The one list of them: the URLconf and the tests read it.
CELAEST_APPS = [
    "identity",
    "audit",
    "settings_app",
    "licensing",
    "aimesh",
    "marketplace",
    "billing",
    "ipcontrol",
    "operations",
    "analytics",
    "backoffice",  # the staff back office: the admin dashboard
    "demo",  # the demo loader (seed_demo): last, since it calls every app
]

INSTALLED_APPS = [
    # The admin theme (README, "The back office"): before the admin, whose templates and static
    # files it overrides. The admin's site is CELAEST's (Unfold's, and its content policy).
    "unfold.apps.BasicAppConfig",
    "celaest.adminsite.AdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    *CELAEST_APPS,
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "celaest.middleware.RequestContextMiddleware",
    "celaest.middleware.LeanPathMiddleware",  # LEAN_PATHS skip everything below
    "celaest.middleware.RequestBodyLimitMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "settings_app.middleware.UserSessionMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# AI work, served as coroutines by ``celaest.asgi.AIHandler`` (the gateway and synchronous tasks):
# its middleware must run natively under ASGI, so that no thread waits with a request.
# A path ending with "/" is a prefix; another is one path, with or without its trailing slash.
AI_PATHS = ("/v1/", "/api/v1/tasks")
AI_MIDDLEWARE = [
    "celaest.middleware.RequestContextMiddleware",
    "celaest.middleware.RequestBodyLimitMiddleware",
]
# AI paths that the REST API's logged-in users call too (the gateway takes API keys only): their
# sessions, as short synchronous steps that are not held while a provider answers.
AI_SESSION_PATHS = ("/api/v1/tasks",)
AI_SESSION_MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "settings_app.middleware.UserSessionMiddleware",
]
# Threads (each with its database connection) that run the short synchronous steps of the AI
# views in each ASGI process (celaest.aio): while providers answer, requests hold none of them.
AI_DB_THREADS = env.int("AI_DB_THREADS", default=8)
# The largest body any AI path takes (the gateway's 20 MB): larger ones are refused while read.
AI_MAX_REQUEST_BYTES = 20 * 1024 * 1024

# The largest request body an API view takes unless it says otherwise (``max_request_bytes``):
# 413 above it, before the body is read.
API_MAX_REQUEST_BYTES = 1024 * 1024

# The public license endpoints installed software calls (no session, user, CSRF or content policy
# applies to them): served without the middleware below LeanPathMiddleware.
LEAN_PATHS = (
    "/api/v1/licenses/validate",
    "/api/v1/licenses/activate",
    "/api/v1/licenses/deactivate",
    "/api/v1/licenses/checkout",
    "/api/v1/licenses/heartbeat",
    "/api/v1/licenses/license-file",
)

# Security headers everywhere (the admin, the API docs, the dashboard): no inline or third-party
# scripts, no framing. Styles allow 'unsafe-inline' for the admin's widgets and the charts.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "worker-src": ["'self'", "blob:"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
# Admin pages add 'unsafe-eval' to script-src, and only they: the theme's Alpine.js needs it
# (celaest/adminsite.py says why and what still holds).
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"

ROOT_URLCONF = "celaest.urls"
WSGI_APPLICATION = "celaest.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "celaest" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'celaest.sqlite3'}"),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # Several processes (web, worker, beat) share the file: wait for locks instead of failing,
    # and let readers run beside a writer.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 30, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "identity.User"
AUTHENTICATION_BACKENDS = ["identity.backends.ThrottledModelBackend"]
# Brute-force protection of password logins (identity.backends) and of API key guessing.
LOGIN_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
LOGIN_FAILURE_LIMIT_PER_IP = env.int("LOGIN_FAILURE_LIMIT_PER_IP", default=50)
LOGIN_FAILURE_WINDOW_SECONDS = env.int("LOGIN_FAILURE_WINDOW_SECONDS", default=900)
API_KEY_FAILURES_PER_MINUTE = env.int("API_KEY_FAILURES_PER_MINUTE", default=20)
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "static")))
# The staff dashboard's charting library is served from the installed plotly package, not a CDN.
STATICFILES_DIRS = [("vendor/plotly", Path(find_spec("plotly").origin).parent / "package_data")]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
MEDIA_URL = "media/"

# Redis serves the broker, the cache and rate-limit counters when it is configured.
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "celaest.cache.ReusedClientRedisCache", "LOCATION": REDIS_URL}}
else:
    # A file cache is shared by every process on the machine, unlike local memory.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

# Celery: JSON only, explicit time limits, late acks for work that must not be lost.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(VAR_DIR / "broker" / "queue"),
        "data_folder_out": str(VAR_DIR / "broker" / "queue"),
        "processed_folder": str(VAR_DIR / "broker" / "processed"),
        "control_folder": str(VAR_DIR / "broker" / "control"),
        "store_processed": False,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=300)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=240)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Celery's Django fixup closes every database connection around each task unless this is set; it
# then closes them every this many tasks. ``celaest.celery`` keeps CONN_MAX_AGE between tasks and
# closes the connections after any task that failed.
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=1000)
# One queue per kind of work, each consumed by its own workers (README, "Serving in production"),
# so no kind can hold up another: with a single queue, twelve deliveries to one customer's
# endpoint that answered after 30 s took both processes of a worker, delayed another
# organization's webhook by 89 s and the 2-s validation flush by over two minutes.
#   platform  the periodic jobs that keep the platform running: the validation flush (every 2 s),
#             collisions, sweeps, usage flushes, expiry, the worker heartbeat
#   ai        AI tasks and batch chunks, and the probe of provider keys (they wait on providers)
#   webhooks  outbound deliveries (they wait on customers' endpoints): a thread pool
#   celery    the rest: invoice e-mails, the subscriptions' renewal batches (every process of
#             the worker renews side by side) and the long reporting jobs (ROI aggregation, purges
#             run up to 30 minutes and would take a platform process from the flush for that long)
# A worker started without -Q consumes every queue listed here (bin/dev, the test workers).
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_QUEUES = {
    name: {"exchange": name, "routing_key": name} for name in ("celery", "platform", "ai", "webhooks")
}
CELERY_TASK_ROUTES = {
    "settings_app.deliver_webhook": {"queue": "webhooks"},
    "operations.run_task": {"queue": "ai"},
    "operations.run_batch_chunk": {"queue": "ai"},
    "aimesh.probe_unhealthy_keys": {"queue": "ai"},
    "ipcontrol.flush_validations": {"queue": "platform"},
    "ipcontrol.auto_resolve_collisions": {"queue": "platform"},
    "ipcontrol.deactivate_stale_bindings": {"queue": "platform"},
    "ipcontrol.release_lapsed_leases": {"queue": "platform"},
    "ipcontrol.purge_validations": {"queue": "platform"},
    "ipcontrol.prepare_validation_partitions": {"queue": "platform"},
    "ipcontrol.rollup_validation_days": {"queue": "platform"},
    "celaest.worker_heartbeat": {"queue": "platform"},
    "settings_app.sweep_webhook_deliveries": {"queue": "platform"},
    "settings_app.flush_api_key_usage": {"queue": "platform"},
    "settings_app.clean_expired_sessions": {"queue": "platform"},
    "aimesh.flush_key_usage": {"queue": "platform"},
    "operations.recover_stale_tasks": {"queue": "platform"},
    "licensing.expire_licenses": {"queue": "platform"},
    "licensing.flush_usage_meter": {"queue": "platform"},
    "billing.cancel_stale_orders": {"queue": "platform"},
    "billing.renew_subscriptions": {"queue": "celery"},  # its batches run long: never on platform
    "billing.renew_subscription_batch": {"queue": "celery"},
    "billing.dun_subscriptions": {"queue": "platform"},
    "billing.check_usage_alerts": {"queue": "platform"},
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# Every periodic job, in one place. Each entry expires before its next run so a backlog never
# piles up the same job.
CELERY_BEAT_SCHEDULE = {
    "cancel-stale-orders": {
        "task": "billing.cancel_stale_orders",
        "schedule": 3600.0,
        "options": {"expires": 3000},
    },
    # Subscriptions: renewal invoices at each period boundary, then dunning of the unpaid ones.
    "renew-subscriptions": {
        "task": "billing.renew_subscriptions",
        "schedule": 300.0,
        "options": {"expires": 290},
    },
    "dun-subscriptions": {
        "task": "billing.dun_subscriptions",
        "schedule": 3600.0,
        "options": {"expires": 3000},
    },
    "check-usage-alerts": {
        "task": "billing.check_usage_alerts",
        "schedule": 120.0,
        "options": {"expires": 110},
    },
    "flush-api-key-usage": {
        "task": "settings_app.flush_api_key_usage",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    "flush-ai-key-usage": {
        "task": "aimesh.flush_key_usage",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    "probe-unhealthy-ai-keys": {
        "task": "aimesh.probe_unhealthy_keys",
        "schedule": 120.0,
        "options": {"expires": 110},
    },
    "recover-stale-ai-tasks": {
        "task": "operations.recover_stale_tasks",
        "schedule": 120.0,
        "options": {"expires": 110},
    },
    # The AI usage counted in Redis (licensing.meter), into PostgreSQL.
    "flush-usage-meter": {
        "task": "licensing.flush_usage_meter",
        "schedule": 1.0,
        "options": {"expires": 5},
    },
    "expire-licenses": {
        "task": "licensing.expire_licenses",
        "schedule": 300.0,
        "options": {"expires": 290},
    },
    "flush-license-validations": {
        "task": "ipcontrol.flush_validations",
        "schedule": 2.0,
        "options": {"expires": 10},
    },
    "deactivate-stale-license-bindings": {
        "task": "ipcontrol.deactivate_stale_bindings",
        "schedule": 3600.0,
        "options": {"expires": 3000},
    },
    # Machines whose heartbeat lease lapsed (window plus grace) lose their seat within a minute.
    "release-lapsed-license-leases": {
        "task": "ipcontrol.release_lapsed_leases",
        "schedule": 15.0,
        "options": {"expires": 14},
    },
    # The validation log's retention (system config ipcontrol.validation_retention_days).
    "purge-license-validations": {
        "task": "ipcontrol.purge_validations",
        "schedule": 3600.0,
        "options": {"expires": 3000},
    },
    # PostgreSQL: license_validations' monthly partitions, made months ahead (ipcontrol.partitions).
    "prepare-license-validation-partitions": {
        "task": "ipcontrol.prepare_validation_partitions",
        "schedule": 6 * 3600.0,
        "options": {"expires": 3 * 3600},
    },
    # Daily validation counts per license and result, kept after the log's retention.
    "rollup-license-validation-days": {
        "task": "ipcontrol.rollup_validation_days",
        "schedule": 3600.0,
        "options": {"expires": 3000},
    },
    "auto-resolve-license-collisions": {
        "task": "ipcontrol.auto_resolve_collisions",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    "sweep-webhook-deliveries": {
        "task": "settings_app.sweep_webhook_deliveries",
        "schedule": 30.0,
        "options": {"expires": 25},
    },
    "clean-expired-sessions": {
        "task": "settings_app.clean_expired_sessions",
        "schedule": 3600.0,
        "options": {"expires": 3000},
    },
    "worker-heartbeat": {
        "task": "celaest.worker_heartbeat",
        "schedule": 30.0,
        "options": {"expires": 25},
    },
    "purge-telemetry": {
        "task": "analytics.purge_telemetry",
        "schedule": crontab(hour=3, minute=15),
        "options": {"expires": 3 * 3600},
    },
    "rollup-usage-logs": {
        "task": "analytics.rollup_usage_logs",
        "schedule": crontab(hour=1, minute=10),
        "options": {"expires": 3 * 3600},
    },
    "aggregate-roi-today": {
        "task": "analytics.aggregate_roi_today",
        "schedule": crontab(minute=5),
        "options": {"expires": 3000},
    },
    "aggregate-roi-closing": {
        "task": "analytics.aggregate_roi_closing",
        "schedule": crontab(hour=0, minute=30),
        "options": {"expires": 3 * 3600},
    },
}

# Proxies (CIDRs, comma-separated) whose X-Forwarded-For is believed when they are the direct peer.
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=[])

# Public license validation: requests per minute per caller IP and per license key (429 beyond).
LICENSE_VALIDATE_RATE_PER_IP = env.int("LICENSE_VALIDATE_RATE_PER_IP", default=600)
LICENSE_VALIDATE_RATE_PER_KEY = env.int("LICENSE_VALIDATE_RATE_PER_KEY", default=120)
# Ed25519 keys signing offline license certificates: comma-separated "kid:base64-private-key",
# newest first (it signs; every listed key still verifies). Default: none, and a development key
# is generated under CELAEST_VAR_DIR; production requires it.
LICENSE_SIGNING_KEYS = env.list("LICENSE_SIGNING_KEYS", default=[])

# Memory PostgreSQL may use to group tasks during ROI aggregation (set for that transaction only).
ROI_AGGREGATION_WORK_MEM = env.str("ROI_AGGREGATION_WORK_MEM", default="128MB")

# Encryption of secrets at rest (provider keys, webhook secrets): comma-separated Fernet keys,
# newest first. Without it, a key is derived from SECRET_KEY (development only).
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", default=[])

# Outgoing webhooks. Endpoints must be https unless WEBHOOK_REQUIRE_HTTPS is off, and never
# resolve to loopback, private, link-local, metadata or reserved addresses unless their host (or
# an address in a listed CIDR) is in WEBHOOK_ALLOWED_HOSTS (development and tests only).
WEBHOOK_REQUIRE_HTTPS = env.bool("WEBHOOK_REQUIRE_HTTPS", default=not DEBUG)
WEBHOOK_ALLOWED_HOSTS = env.list("WEBHOOK_ALLOWED_HOSTS", default=[])
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=15.0)
# Attempts one endpoint may have in flight at once, across all workers. The others wait (their
# rows stay pending, their messages come back later) without holding a worker, so an endpoint
# that hangs only delays its own deliveries; keep it well below the webhooks worker's threads.
WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT = env.int("WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT", default=4)

# Outgoing e-mail (invoices), from one URL: smtp://user:password@host:25 (smtp+tls, for STARTTLS, or
# smtp+ssl), consolemail:// (printed by the worker), dummymail:// (dropped). The default prints
# to the console: a development machine has no mail server, and Django's own default (SMTP on
# localhost:25) only made every invoice e-mail fail and retry. Production must set it. Set but
# empty counts as unset.
EMAIL_CONFIG = environ.Env.email_url_config(env.str("EMAIL_URL", default="") or "consolemail://")
EMAIL_BACKEND = EMAIL_CONFIG["EMAIL_BACKEND"]
EMAIL_HOST = EMAIL_CONFIG.get("EMAIL_HOST") or "localhost"
EMAIL_PORT = EMAIL_CONFIG.get("EMAIL_PORT") or 25
EMAIL_HOST_USER = EMAIL_CONFIG.get("EMAIL_HOST_USER") or ""
EMAIL_HOST_PASSWORD = EMAIL_CONFIG.get("EMAIL_HOST_PASSWORD") or ""
EMAIL_USE_TLS = EMAIL_CONFIG.get("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = EMAIL_CONFIG.get("EMAIL_USE_SSL", False)
# Seconds a mail server has to answer: without it a server that takes the connection and never
# speaks holds the sending worker until the task's time limit.
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=20)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="CELAEST <billing@celaest.local>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# Supabase JWTs: HS256 with the project's secret, and/or asymmetric keys from its JWKS endpoint.
SUPABASE_JWT_SECRET = env.str("SUPABASE_JWT_SECRET", default="")
SUPABASE_JWKS_URL = env.str("SUPABASE_JWKS_URL", default="")
SUPABASE_JWKS_CACHE_SECONDS = env.int("SUPABASE_JWKS_CACHE_SECONDS", default=600)
SUPABASE_JWT_AUDIENCE = env.str("SUPABASE_JWT_AUDIENCE", default="authenticated")
SUPABASE_JWT_ISSUER = env.str("SUPABASE_JWT_ISSUER", default="")

# Stripe (billing's card gateway): the secret API key and the webhook signing secret. STRIPE_API_BASE
# points the SDK at another server (tests run a local one speaking Stripe's API).
STRIPE_API_KEY = env.str("STRIPE_API_KEY", default="")
STRIPE_WEBHOOK_SECRET = env.str("STRIPE_WEBHOOK_SECRET", default="")
STRIPE_API_BASE = env.str("STRIPE_API_BASE", default="https://api.stripe.com")
# The seller named on invoices and credit notes (billing.documents).
SELLER_NAME = env.str("SELLER_NAME", default="CELAEST")
SELLER_ADDRESS = [line.strip() for line in env.str("SELLER_ADDRESS", default="").split("|") if line.strip()]
SELLER_EMAIL = env.str("SELLER_EMAIL", default="")
SELLER_TAX_IDS = [item.strip() for item in env.str("SELLER_TAX_IDS", default="").split(",") if item.strip()]
# How long a signed asset download link stays valid, in seconds.
ASSET_DOWNLOAD_LINK_SECONDS = env.int("ASSET_DOWNLOAD_LINK_SECONDS", default=300)
# Orders unpaid for this many hours are cancelled (their coupon redemptions given back).
ORDER_PENDING_TTL_HOURS = env.int("ORDER_PENDING_TTL_HOURS", default=168)

# AI work. A pooled provider key leaves the pool after this many failures in a row (the beat job
# probes it back) and rests this many seconds after a failure whose answer names no Retry-After.
AI_KEY_FAILURES_UNHEALTHY = env.int("AI_KEY_FAILURES_UNHEALTHY", default=3)
AI_KEY_COOLDOWN_SECONDS = env.int("AI_KEY_COOLDOWN_SECONDS", default=30)
# Seconds a provider has to answer one call (tasks and the gateway).
AI_REQUEST_TIMEOUT_SECONDS = env.float("AI_REQUEST_TIMEOUT_SECONDS", default=60.0)
# A queued task claimed longer ago than this is stale: its worker died and another takes it over.
# Keep it at least the task's time limit (600 s), else a live worker's task could run twice.
AI_TASK_STALE_SECONDS = env.int("AI_TASK_STALE_SECONDS", default=600)
# A gateway call's budget reservation (operations.budgets) not settled this long after it was taken
# is given back: its process died. Longer than a call takes; a long stream renews it.
AI_BUDGET_RESERVATION_TTL_SECONDS = env.int("AI_BUDGET_RESERVATION_TTL_SECONDS", default=900)
# A task still queued (never claimed) this long after its message was sent has its message sent
# again by the recover-stale-ai-tasks beat job, in case the broker lost it or was down when the task
# was committed. A task merely waiting in a long queue gets a duplicate message, which does nothing.
AI_TASK_REQUEUE_SECONDS = env.int("AI_TASK_REQUEUE_SECONDS", default=900)
# With Redis, AI usage is counted there and written to PostgreSQL by the flush-usage-meter beat
# job (licensing.meter). True writes each change through to PostgreSQL at once, in the caller's
# transaction, instead (the test suite, whose tests read the counters right after a call).
LICENSE_METER_WRITE_THROUGH = False
# Tasks per Celery message when a batch is queued.
AI_BATCH_CHUNK_SIZE = env.int("AI_BATCH_CHUNK_SIZE", default=25)
# Calls one batch chunk keeps in flight at once (on one event loop; the keys' rate_limit_rpm
# paces them further).
AI_BATCH_CONCURRENCY = env.int("AI_BATCH_CONCURRENCY", default=50)
# Open connections per provider base URL in each process (calls beyond it wait for one).
AI_HTTP_MAX_CONNECTIONS = env.int("AI_HTTP_MAX_CONNECTIONS", default=1000)

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "settings_app.authentication.ApiKeyAuthentication",
        "settings_app.authentication.SupabaseJWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    # JSON only: form encodings cannot express JSON fields faithfully. Endpoints that take a
    # file upload add the multipart parser themselves.
    "DEFAULT_PARSER_CLASSES": ["celaest.api.parsers.StrictJSONParser"],
    "EXCEPTION_HANDLER": "celaest.errors.exception_handler",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "DEFAULT_PAGINATION_CLASS": "celaest.api.pagination.StandardPagination",
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    "PAGE_SIZE": 50,
}
# The admin theme (django-unfold). The sidebar is built from the registered models
# (backoffice.navigation), so a model registered later appears in its area on its own.
UNFOLD = {
    "SITE_TITLE": "CELAEST back office",
    "SITE_HEADER": "CELAEST",
    "SITE_SUBHEADER": "Back office",
    "SITE_SYMBOL": "hub",
    # No public site to "view": the account menu links the API documentation instead.
    "SITE_URL": None,
    "SITE_FAVICONS": [
        {"rel": "icon", "type": "image/svg+xml", "href": lambda request: static("backoffice/favicon.svg")}
    ],
    "SHOW_VIEW_ON_SITE": False,
    "SHOW_HISTORY": True,
    "STYLES": [lambda request: static("backoffice/admin.css")],
    "SCRIPTS": [lambda request: static("backoffice/admin.js")],
    "ACCOUNT": {"navigation": [{"title": "API documentation", "link": "/api/docs/"}]},
    "SIDEBAR": {
        "show_search": True,
        "show_all_applications": False,
        "navigation": "backoffice.navigation.sidebar_navigation",
    },
}

SPECTACULAR_SETTINGS = {
    "TITLE": "CELAEST API",
    "DESCRIPTION": "Multi-tenant back office: licensing, AI mesh, marketplace, billing.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "PREPROCESSING_HOOKS": ["celaest.api.schema.document_paths_without_trailing_slash"],
    # Operations grouped by area, staff-only ones in their own groups, listed last.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "celaest.api.schema.tag_operations_by_area",
    ],
    # Every model's status has its own enum name, so adding a model never renames another's.
    "ENUM_NAME_OVERRIDES": {
        "LicenseStatusEnum": "licensing.models.License.Status",
        "TaskBatchStatusEnum": "operations.models.TaskBatch.Status",
        "ProcessedTaskStatusEnum": "operations.models.ProcessedTask.Status",
        "WebhookStatusEnum": "settings_app.models.Webhook.Status",
        "WebhookDeliveryStatusEnum": "settings_app.models.WebhookDelivery.Status",
        "ProductStatusEnum": "marketplace.models.Product.Status",
        "ProductReleaseStatusEnum": "marketplace.models.ProductRelease.Status",
        "CustomerAssetStatusEnum": "marketplace.models.CustomerAsset.Status",
        "PaymentGatewayStatusEnum": "billing.models.PaymentGateway.Status",
        "OrderStatusEnum": "billing.models.Order.Status",
        "InvoiceStatusEnum": "billing.models.Invoice.Status",
        "SubscriptionStatusEnum": "billing.models.Subscription.Status",
        "SubscriptionIntervalEnum": "billing.models.Subscription.Interval",
    },
    "COMPONENT_SPLIT_REQUEST": True,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # WeasyPrint (invoice PDFs) logs every rendering step, and its stylesheets at import, at INFO.
    "loggers": {"weasyprint": {"level": "WARNING"}},
}
