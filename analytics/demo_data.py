"""Demo data for every CELAEST table: a realistic, idempotent seed for demos, the admin and benchmarks.

``demo_seed`` builds the base demo: the staff superuser ``admin@celaest.local``, the customer
organization ``demo`` (owner ``owner@demo.celaest.local``) and a second tenant ``acme`` with their
own users and data, so tenant isolation can be shown. Every one of the 36 tables gets rows.
``scale`` > 0 adds benchmark volumes on top (per unit: 10 organizations, 1,000 licenses, 10,000
processed tasks, 10,000 license validations, 5,000 telemetry events, ...).

Running it again adds nothing. Rows with a natural key (slug, email, code, ...) are looked up by
it; the others get a deterministic UUID (uuid5 of what they are), and volumes are inserted chunk by
chunk, skipping the ids already present. Derived rows (daily ROI, license usage per month, product
rating and download counters) are recomputed from the tasks, reviews and downloads with upserts.

Secrets are generated, never hard-coded: license keys, provider keys (stored encrypted), user API
keys and session tokens (stored as hashes), webhook secrets (encrypted, plus a hash). The two logins
the seed prints keep a stable password across runs: ``DEMO_ADMIN_PASSWORD`` / ``DEMO_OWNER_PASSWORD``
when set, else one generated on the first run and kept in ``VAR_DIR/demo-credentials.json``.
"""

import base64
import calendar
import hashlib
import json
import os
import random
import secrets
import string
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Protocol

from django.conf import settings
from django.contrib.auth import password_validation
from django.contrib.auth.hashers import make_password
from django.contrib.staticfiles import finders
from django.core.exceptions import ValidationError
from django.db import connections, models, transaction
from django.db.models import Avg, Count, F, OuterRef, Subquery, Sum
from django.db.models.functions import Coalesce, TruncMonth
from django.templatetags.static import static
from django.utils import timezone

from aimesh.models import AIApiKey, AIModel, Prompt, PromptFallbackModel, Provider
from analytics.models import RoiMetric, TelemetryEvent
from audit.models import AuditLog, SystemEvent
from billing.models import (
    Coupon,
    DocumentSequence,
    Invoice,
    Order,
    OrderItem,
    PaymentGateway,
    PaymentMethod,
    TaxRate,
)
from billing.services import document_sequences_sync
from celaest.crypto import encrypt, hash_secret
from celaest.money import quantize_money
from identity.models import Organization, User
from ipcontrol.models import LicenseCollision, LicenseIpBinding, LicenseValidation
from licensing.models import License, LicenseUsageLog, SubscriptionPlan
from marketplace.models import (
    AssetDownload,
    CustomerAsset,
    Product,
    ProductCategory,
    ProductRelease,
    ProductReview,
)
from operations.models import ProcessedTask, TaskBatch
from settings_app.models import FeatureFlag, SystemConfig, UserApiKey, UserSession, Webhook, WebhookDelivery

ADMIN_EMAIL = "admin@celaest.local"
OWNER_EMAIL = "owner@demo.celaest.local"
DEMO_ORG_SLUG = "demo"
SECOND_ORG_SLUG = "acme"
BENCH_SLUG_PREFIX = "bench-"
CREDENTIALS_FILENAME = "demo-credentials.json"
ADMIN_PASSWORD_ENV = "DEMO_ADMIN_PASSWORD"  # noqa: S105 - the name of a variable, not a password
OWNER_PASSWORD_ENV = "DEMO_OWNER_PASSWORD"  # noqa: S105 - the name of a variable, not a password
FAKE_PROVIDER_URL_ENV = "CELAEST_FAKE_PROVIDER_URL"
FAKE_PROVIDER_URL_DEFAULT = "http://127.0.0.1:9100"

# The demo calls nothing outside the machine. Releases point at a file the platform serves itself
# (a path: the redirect works on whatever host and port it runs); webhooks are paused or disabled
# at example URLs (RFC 2606 ``.example``, which never resolves) until someone points them at a
# receiver of theirs.
DEMO_RELEASE_FILE = "marketplace/demo-release.txt"
BENCH_WEBHOOK_NAME = "Events to ERP"
#: What earlier versions of this seed stored, and what replaces it (``_retire_outside_urls``).
_OLD_DOWNLOAD_PREFIX = "https://downloads.example.com/"
_OLD_WEBHOOK_URLS = {
    "https://erp.demo.example.com/hooks/celaest": "https://erp.demo.example/hooks/celaest",
    "https://hooks.example.com/services/demo-alerts": "https://alerts.demo.example/services/demo-alerts",
    "https://portal.acme.example.com/celaest/events": "https://portal.acme.example/celaest/events",
}
_PAUSED_ERROR = "Not sent: the endpoint is paused."
_NOT_SENT_DELIVERY = ("demo-erp", "e3", 2)  # webhook, event, attempt: the retry after the pause

# Per unit of --scale.
BENCH_ORGS_PER_SCALE = 10
BENCH_LICENSES_PER_ORG = 100
BENCH_TASKS_PER_ORG = 1_000
BENCH_VALIDATIONS_PER_LICENSE = 10
BENCH_TELEMETRY_PER_ORG = 500
BENCH_AUDIT_PER_ORG = 200
BENCH_ORDERS_PER_ORG = 20
BENCH_DELIVERIES_PER_WEBHOOK = 100
BENCH_BATCH_SIZE = 20  # tasks per benchmark batch; the first tenth of the tasks run in batches

_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_DNS, "demo.celaest.local")
_INSERT_BATCH = 1_000  # rows per INSERT statement
_EXISTS_CHUNK = 2_000  # ids per "which of these exist already" query
_COPY_THRESHOLD = 500  # rows from which PostgreSQL inserts go through COPY
_HISTORY_DAYS = 30
_CENT = Decimal("0.01")
_COST_QUANTUM = Decimal("0.00000001")

_UNUSABLE_PASSWORD = make_password(None)  # demo personas other than the two printed logins cannot log in


class OutputStream(Protocol):
    """Where progress goes: ``sys.stdout``, a command's ``self.stdout``, a ``StringIO``."""

    def write(self, msg: str, /) -> object: ...


# --------------------------------------------------------------------------------------------
# Credentials
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoLogin:
    email: str
    password: str


@dataclass(frozen=True)
class DemoCredentials:
    """The two logins the seed guarantees work: the staff superuser and the demo organization's owner."""

    admin: DemoLogin
    owner: DemoLogin


class DemoSeedError(Exception):
    """The seed cannot run as asked (bad arguments, unreadable credentials file)."""


def default_credentials_path() -> Path:
    return Path(settings.VAR_DIR) / CREDENTIALS_FILENAME


def demo_password_generate() -> str:
    """20 random letters and digits (about 119 bits): strong, and safe to paste into a shell."""
    alphabet = string.ascii_letters + string.digits
    while True:
        password = "".join(secrets.choice(alphabet) for _ in range(20))
        if any(c.isdigit() for c in password) and any(c.isalpha() for c in password):
            return password


def demo_credentials_resolve(*, path: Path, stdout: OutputStream | None = None) -> DemoCredentials:
    """The passwords of the two printed logins: from the environment if set, else from ``path``,
    else generated now and saved to ``path`` (mode 0600) so later runs print the same ones."""
    stored = _credentials_file_read(path)
    passwords: dict[str, str] = {}
    generated: dict[str, str] = {}
    for email, env_name in ((ADMIN_EMAIL, ADMIN_PASSWORD_ENV), (OWNER_EMAIL, OWNER_PASSWORD_ENV)):
        from_env = os.environ.get(env_name, "")
        if from_env:
            _warn_if_weak(password=from_env, source=env_name, stdout=stdout)
            passwords[email] = from_env
        elif stored.get(email):
            passwords[email] = stored[email]
        else:
            passwords[email] = generated[email] = demo_password_generate()
    if generated:
        _credentials_file_write(path, {**stored, **generated})
    return DemoCredentials(
        admin=DemoLogin(ADMIN_EMAIL, passwords[ADMIN_EMAIL]),
        owner=DemoLogin(OWNER_EMAIL, passwords[OWNER_EMAIL]),
    )


def _credentials_file_read(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DemoSeedError(f"cannot read the demo credentials file {path}: {exc}") from exc
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise DemoSeedError(f"{path} must hold a JSON object of email -> password")
    return data


def _credentials_file_write(path: Path, passwords: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(passwords, handle, indent=2)
        handle.write("\n")
    os.replace(tmp, path)


def _warn_if_weak(*, password: str, source: str, stdout: OutputStream | None) -> None:
    try:
        password_validation.validate_password(password)
    except ValidationError as exc:
        if stdout is not None:
            stdout.write(f"Warning: {source} is weak ({' '.join(exc.messages)}); using it anyway.\n")


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def demo_uuid(*parts: object) -> uuid.UUID:
    """The fixed id of a demo row that has no natural key, e.g. ``demo_uuid("license", "demo", "primary")``."""
    return uuid.uuid5(_NAMESPACE, ":".join(str(part) for part in parts))


_LICENSE_KEY_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U to misread
_LICENSE_KEY_GROUPS = 6
_LICENSE_KEY_GROUP_LENGTH = 5


def license_key_generate() -> str:
    """A key like ``CEL-7K3QX-9MZ2D-...``: 6 groups of 5 Crockford base32 characters, 150 random bits.

    Stand-in until the licensing service provides the real generator.
    """
    length = _LICENSE_KEY_GROUPS * _LICENSE_KEY_GROUP_LENGTH
    bits = secrets.randbits(5 * length)
    chars = []
    for _ in range(length):
        chars.append(_LICENSE_KEY_ALPHABET[bits & 31])
        bits >>= 5
    groups = ["".join(chars[i : i + _LICENSE_KEY_GROUP_LENGTH]) for i in range(0, length, _LICENSE_KEY_GROUP_LENGTH)]
    return "CEL-" + "-".join(groups)


def _fingerprint(*parts: object) -> str:
    return hashlib.sha256(":".join(str(p) for p in parts).encode()).hexdigest()[:32]


def _spread(rng: random.Random, now: datetime, *, days: int = _HISTORY_DAYS) -> datetime:
    """A moment in the last ``days`` days."""
    return now - timedelta(seconds=rng.randint(60, days * 86_400))


def _month_bounds(day: date) -> tuple[date, date]:
    last = calendar.monthrange(day.year, day.month)[1]
    return day.replace(day=1), day.replace(day=last)


def _needs_db_prep(field: models.Field) -> bool:
    return (
        isinstance(field, models.JSONField)
        or getattr(field, "auto_now", False)
        or getattr(field, "auto_now_add", False)
    )


def _missing_chunks(model: type[models.Model], ids: Sequence[uuid.UUID]) -> Iterator[list[int]]:
    """Positions in ``ids`` whose rows do not exist yet, one list per chunk of ids."""
    manager = model._base_manager
    for start in range(0, len(ids), _EXISTS_CHUNK):
        chunk = ids[start : start + _EXISTS_CHUNK]
        existing = set(manager.filter(pk__in=chunk).values_list("pk", flat=True))
        missing = [start + offset for offset, pk in enumerate(chunk) if pk not in existing]
        if missing:
            yield missing


def _insert_missing(
    model: type[models.Model], ids: Sequence[uuid.UUID], build: Callable[[int, uuid.UUID], models.Model]
) -> list[uuid.UUID]:
    """Insert ``build(i, ids[i])`` for every id not in the table yet; return the ids inserted."""
    inserted: list[uuid.UUID] = []
    for positions in _missing_chunks(model, ids):
        rows = [build(i, ids[i]) for i in positions]
        _bulk_insert_ignoring_conflicts(model, rows)
        inserted.extend(row.pk for row in rows)
    return inserted


def _bulk_insert_ignoring_conflicts(model: type[models.Model], rows: Sequence[models.Model]) -> None:
    """``bulk_create(ignore_conflicts=True)``, through COPY on PostgreSQL for the big volumes.

    Django 5.2 sends PostgreSQL bulk inserts as arrays (UNNEST) that psycopg quotes element by
    element in Python: ``--scale 10`` took about 50 s that way. COPY into a staging table, then
    ``INSERT ... ON CONFLICT DO NOTHING``, keeps the semantics and brings it to about 35 s.
    """
    connection = connections[model._base_manager.db]
    if connection.vendor != "postgresql" or len(rows) < _COPY_THRESHOLD:
        model._base_manager.bulk_create(rows, batch_size=_INSERT_BATCH, ignore_conflicts=True)
        return
    fields = [f for f in model._meta.concrete_fields if not f.generated]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    table = connection.ops.quote_name(model._meta.db_table)
    stage = connection.ops.quote_name(f"seed_stage_{model._meta.db_table}")
    # Only quoted identifiers from the model's metadata are formatted into the SQL below; values go through COPY.
    create_stage = f"CREATE TEMPORARY TABLE {stage} AS SELECT {columns} FROM {table} WITH NO DATA"  # noqa: S608
    insert = f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {stage} ON CONFLICT DO NOTHING"  # noqa: S608
    # What bulk_create would send: pre_save (auto_now) then the field's DB value. Only JSON and
    # auto_now fields need Django's conversion; the other values are plain Python that psycopg dumps.
    prepared = [f if _needs_db_prep(f) else None for f in fields]
    attnames = [f.attname for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(create_stage)
        with cursor.cursor.copy(f"COPY {stage} ({columns}) FROM STDIN") as copy:  # the psycopg cursor
            for row in rows:
                copy.write_row(
                    [
                        getattr(row, attname) if f is None else f.get_db_prep_save(f.pre_save(row, True), connection)
                        for attname, f in zip(attnames, prepared, strict=True)
                    ]
                )
        cursor.execute(insert)
        cursor.execute(f"DROP TABLE {stage}")


def _backdate_issued_at(license_ids: Sequence[uuid.UUID]) -> None:
    """``License.issued_at`` is ``auto_now_add``: align it with the (backdated) creation time."""
    for start in range(0, len(license_ids), _EXISTS_CHUNK):
        License.all_objects.filter(pk__in=license_ids[start : start + _EXISTS_CHUNK]).update(issued_at=F("created_at"))


class _NumberAllocator:
    """Hands out ``PREFIX-YYYY-NNNNNN`` document numbers after the highest one stored for the year."""

    def __init__(self, model: type[models.Model], field_name: str, prefix: str):
        self._model = model
        self._field = field_name
        self._prefix = prefix
        self._last: dict[int, int] = {}

    def next(self, year: int) -> str:
        if year not in self._last:
            stem = f"{self._prefix}-{year}-"
            last = (
                self._model._base_manager.filter(**{f"{self._field}__regex": rf"^{stem}[0-9]{{6}}$"})
                .order_by(f"-{self._field}")
                .values_list(self._field, flat=True)
                .first()
            )
            self._last[year] = int(last[len(stem) :]) if last else 0
        self._last[year] += 1
        return f"{self._prefix}-{year}-{self._last[year]:06d}"


@contextmanager
def _section(label: str, tables: Sequence[type[models.Model]], stdout: OutputStream | None) -> Iterator[None]:
    """Run one module's seeding in its own transaction and report how many rows it added."""
    before = sum(model._base_manager.count() for model in tables)
    started = time.monotonic()
    with transaction.atomic():
        yield
    if stdout is not None:
        added = sum(model._base_manager.count() for model in tables) - before
        stdout.write(f"  {label:<24} +{added:>7} rows  ({time.monotonic() - started:.1f}s)\n")


# --------------------------------------------------------------------------------------------
# Reference data
# --------------------------------------------------------------------------------------------

_ORGANIZATIONS = {
    DEMO_ORG_SLUG: {
        "name": "Demo Corp",
        "email": "billing@demo.celaest.local",
        "max_users": 25,
        "settings": {"currency": "USD", "country": "US", "hourly_rate": "45.00", "timezone": "America/Los_Angeles"},
    },
    SECOND_ORG_SLUG: {
        "name": "Acme Industrial",
        "email": "it@acme.celaest.local",
        "max_users": 10,
        "settings": {"currency": "USD", "country": "ES", "hourly_rate": "38.00", "timezone": "Europe/Madrid"},
    },
}

_PEOPLE = {
    DEMO_ORG_SLUG: (
        ("owner", "Dana", "Whitfield"),
        ("admin", "Marcus", "Lee"),
        ("member", "Priya", "Nair"),
        ("viewer", "Tom", "Becker"),
    ),
    SECOND_ORG_SLUG: (
        ("owner", "Lucía", "Romero"),
        ("admin", "Javier", "Ortiz"),
        ("member", "Ana", "Gil"),
        ("viewer", "Pablo", "Sanz"),
    ),
}

_ROLE_SCOPES = {
    "owner": ["licenses:read", "licenses:write", "tasks:read", "tasks:run", "billing:read", "billing:write", "admin"],
    "admin": ["licenses:read", "licenses:write", "tasks:read", "tasks:run", "billing:read", "settings:write"],
    "member": ["licenses:read", "tasks:read", "tasks:run"],
    "viewer": ["licenses:read", "tasks:read", "roi:read"],
}

_BASE_FEATURES = ["ai_tasks", "roi_dashboard", "license_validation", "email_support"]
_PLANS = (
    {
        "code": "starter",
        "name": "Starter",
        "description": "For small teams trying AI automation.",
        "price_monthly": Decimal("29.00"),
        "price_yearly": Decimal("290.00"),
        "sort_order": 10,
        "limits": {
            "max_users": 5,
            "ai_requests_per_month": 2_000,
            "tokens_per_month": 2_000_000,
            "max_machines": 2,
            "max_batch_size": 50,
        },
        "features": _BASE_FEATURES,
    },
    {
        "code": "pro",
        "name": "Pro",
        "description": "Batches, webhooks and API keys for growing teams.",
        "price_monthly": Decimal("99.00"),
        "price_yearly": Decimal("990.00"),
        "sort_order": 20,
        "limits": {
            "max_users": 25,
            "ai_requests_per_month": 20_000,
            "tokens_per_month": 25_000_000,
            "max_machines": 10,
            "max_batch_size": 500,
        },
        "features": [*_BASE_FEATURES, "batches", "webhooks", "api_keys", "priority_support"],
    },
    {
        "code": "enterprise",
        "name": "Enterprise",
        "description": "Custom models, SSO and audit export, with a dedicated contact.",
        "price_monthly": Decimal("499.00"),
        "price_yearly": Decimal("4990.00"),
        "sort_order": 30,
        "limits": {
            "max_users": 250,
            "ai_requests_per_month": 250_000,
            "tokens_per_month": 300_000_000,
            "max_machines": 100,
            "max_batch_size": 5_000,
        },
        "features": [
            *_BASE_FEATURES,
            "batches",
            "webhooks",
            "api_keys",
            "priority_support",
            "sso",
            "custom_models",
            "audit_export",
            "dedicated_support",
        ],
    },
)

# organization, name, plan, status, issued days ago, expires in days, extra fields
_LICENSES = (
    (DEMO_ORG_SLUG, "primary", "pro", License.Status.ACTIVE, 30, 335, {}),
    (DEMO_ORG_SLUG, "trial", "starter", License.Status.TRIAL, 5, 9, {}),
    (
        DEMO_ORG_SLUG,
        "suspended",
        "pro",
        License.Status.SUSPENDED,
        120,
        245,
        {"status_reason": "Payment overdue: invoice unpaid for 30 days"},
    ),
    (DEMO_ORG_SLUG, "expired", "starter", License.Status.EXPIRED, 377, -12, {}),
    (
        DEMO_ORG_SLUG,
        "revoked",
        "enterprise",
        License.Status.REVOKED,
        200,
        165,
        {"status_reason": "Reissued after the key was posted in a public forum"},
    ),
    (
        SECOND_ORG_SLUG,
        "primary",
        "enterprise",
        License.Status.ACTIVE,
        65,
        300,
        {"custom_limits": {"max_machines": 25, "ai_requests_per_month": 300_000}},
    ),
    (SECOND_ORG_SLUG, "trial", "pro", License.Status.TRIAL, 9, 5, {}),
)

# provider, model_id, display name, capabilities, max in, max out, $/1k in, $/1k out, $/1k cached in, default
_AI_MODELS = (
    (
        Provider.OPENAI,
        "gpt-4o-mini",
        "GPT-4o mini",
        ["chat", "json", "vision", "tools"],
        128_000,
        16_384,
        "0.000150",
        "0.000600",
        "0.000075",
        True,
    ),
    (
        Provider.OPENAI,
        "gpt-4o",
        "GPT-4o",
        ["chat", "json", "vision", "tools"],
        128_000,
        16_384,
        "0.002500",
        "0.010000",
        "0.001250",
        False,
    ),
    (
        Provider.ANTHROPIC,
        "claude-3-5-haiku-latest",
        "Claude 3.5 Haiku",
        ["chat", "json", "tools"],
        200_000,
        8_192,
        "0.000800",
        "0.004000",
        "0.000080",
        True,
    ),
    (
        Provider.ANTHROPIC,
        "claude-sonnet-4-20250514",
        "Claude Sonnet 4",
        ["chat", "json", "vision", "tools"],
        200_000,
        64_000,
        "0.003000",
        "0.015000",
        "0.000300",
        False,
    ),
)

# provider, key name, secret prefix, priority, rpm, healthy
_API_KEYS = (
    (Provider.OPENAI, "openai-primary", "sk-demo-", 10, 500, True),
    (Provider.OPENAI, "openai-secondary", "sk-demo-", 20, 200, False),
    (Provider.ANTHROPIC, "anthropic-primary", "sk-ant-demo-", 10, 300, True),
)

_TICKETS = (
    "The desktop app crashes when I export the monthly PDF report since the 1.1 update. Windows 11, 16 GB RAM.",
    "We were charged twice for the Pro plan this month. Please refund one of the charges.",
    "License validation fails on our new build server with 'too many machines' although we removed two.",
    "How do I give a viewer access to the ROI dashboard without letting them run tasks?",
    "Batch of 300 invoices stuck at 42% since yesterday evening, no error shown.",
)
_INVOICES = (
    ("Invoice 2291 from Northwind Traders, total 1,240.50 EUR, due 2026-04-30.", "Northwind Traders", "1240.50", "EUR"),
    ("Globex Ltd. invoice GX-7781: 3 x consulting days, 2,700.00 GBP, net 30.", "Globex Ltd.", "2700.00", "GBP"),
    (
        "Factura F-2026-118 Suministros Ortiz S.L. Importe total 845,20 EUR IVA incluido.",
        "Suministros Ortiz",
        "845.20",
        "EUR",
    ),
    ("Initech invoice #5521 for TPS report automation, USD 4,950.00, due on receipt.", "Initech", "4950.00", "USD"),
)
_TRANSLATIONS = (
    ("Your license will expire in 7 days. Renew it to keep your machines activated.", "Su licencia caduca en 7 días."),
    ("Batch completed: 48 of 50 documents processed successfully.", "Lote completado: 48 de 50 documentos procesados."),
    ("Download the latest release from your customer portal.", "Descargue la última versión desde su portal."),
)

_PROMPTS = (
    {
        "slug": "summarize-ticket",
        "version": 1,
        "name": "Support ticket summary",
        "category": "support",
        "description": "Summarizes a support ticket and rates its priority.",
        "system_prompt": "You are a support lead. Summarize tickets in one sentence and rate their priority.",
        "user_template": "Summarize this support ticket:\n\n{{ ticket_text }}",
        "variables": [{"name": "ticket_text", "type": "string", "required": True, "description": "The ticket body."}],
        "preferred_model": "gpt-4o-mini",
        "temperature": Decimal("0.30"),
        "max_output_tokens": 300,
        "minutes_saved_estimate": Decimal("4.00"),
        "is_active": False,
    },
    {
        "slug": "summarize-ticket",
        "version": 2,
        "parent": 1,
        "name": "Support ticket summary",
        "category": "support",
        "description": "v2: answers JSON with sentiment, and weighs the customer's tier.",
        "system_prompt": (
            "You are a support lead. Answer JSON with keys summary, sentiment (positive|neutral|negative) "
            "and priority (low|normal|high). Enterprise customers get one priority level more."
        ),
        "user_template": "Customer tier: {{ customer_tier }}\n\nTicket:\n{{ ticket_text }}",
        "variables": [
            {"name": "ticket_text", "type": "string", "required": True, "description": "The ticket body."},
            {"name": "customer_tier", "type": "string", "required": False, "description": "starter, pro, ..."},
        ],
        "preferred_model": "claude-3-5-haiku-latest",
        "temperature": Decimal("0.20"),
        "max_output_tokens": 400,
        "minutes_saved_estimate": Decimal("5.00"),
        "is_active": True,
    },
    {
        "slug": "extract-invoice",
        "version": 1,
        "name": "Invoice field extraction",
        "category": "finance",
        "description": "Extracts vendor, total, currency and due date from invoice text.",
        "system_prompt": "Extract vendor, total, currency and due_date from the invoice. Answer JSON only.",
        "user_template": "{{ invoice_text }}",
        "variables": [{"name": "invoice_text", "type": "string", "required": True, "description": "OCR text."}],
        "preferred_model": "gpt-4o-mini",
        "temperature": Decimal("0.00"),
        "max_output_tokens": 300,
        "minutes_saved_estimate": Decimal("6.00"),
        "is_active": True,
    },
    {
        "slug": "translate-text",
        "version": 1,
        "name": "Customer message translation",
        "category": "content",
        "description": "Translates customer-facing text, keeping product names.",
        "system_prompt": "Translate into {{ target_language }}. Keep product names and numbers unchanged.",
        "user_template": "{{ text }}",
        "variables": [
            {"name": "text", "type": "string", "required": True, "description": "Text to translate."},
            {"name": "target_language", "type": "string", "required": True, "description": "e.g. Spanish"},
        ],
        "preferred_model": None,
        "temperature": Decimal("0.40"),
        "max_output_tokens": 800,
        "minutes_saved_estimate": Decimal("3.00"),
        "is_active": True,
    },
)

_CATEGORIES = (
    ("software", "Software", None, 10),
    ("desktop-apps", "Desktop apps", "software", 10),
    ("ai-add-ons", "AI add-ons", "software", 20),
    ("services", "Services", None, 20),
    ("training", "Training", "services", 10),
)

# slug, name, category, price, status, plan, license days, asset days, summary
_PRODUCTS = (
    (
        "celaest-desktop",
        "CELAEST Desktop",
        "desktop-apps",
        "99.00",
        Product.Status.PUBLISHED,
        "pro",
        365,
        None,
        "The desktop client: batch AI processing on your own machines, with a Pro license.",
    ),
    (
        "invoice-extractor",
        "Invoice Extractor Add-on",
        "ai-add-ons",
        "49.00",
        Product.Status.PUBLISHED,
        None,
        None,
        None,
        "Turns scanned invoices into structured data.",
    ),
    (
        "onboarding-workshop",
        "Onboarding Workshop (4 h)",
        "training",
        "450.00",
        Product.Status.PUBLISHED,
        None,
        None,
        90,
        "A remote workshop to set up licenses, prompts and batches with your team.",
    ),
    (
        "legacy-connector",
        "Legacy ERP Connector",
        "ai-add-ons",
        "19.00",
        Product.Status.ARCHIVED,
        None,
        None,
        None,
        "Superseded by webhooks.",
    ),
    (
        "analytics-pack",
        "Analytics Pack",
        "ai-add-ons",
        "149.00",
        Product.Status.DRAFT,
        None,
        None,
        None,
        "Extra ROI dashboards (coming soon).",
    ),
)
_PUBLISHED_PRODUCTS = ("celaest-desktop", "invoice-extractor", "onboarding-workshop")

# product, version, status, days ago, notes
_RELEASES = (
    ("celaest-desktop", "1.0.0", ProductRelease.Status.PUBLISHED, 90, "First public release."),
    ("celaest-desktop", "1.0.1", ProductRelease.Status.YANKED, 80, "Yanked: broke license activation offline."),
    ("celaest-desktop", "1.1.0", ProductRelease.Status.PUBLISHED, 20, "PDF export, Anthropic models, faster batches."),
    ("celaest-desktop", "2.0.0-rc.1", ProductRelease.Status.DRAFT, 2, "Release candidate: new batch engine."),
    ("invoice-extractor", "0.9.0", ProductRelease.Status.PUBLISHED, 45, "Beta: EUR, USD and GBP invoices."),
)

_TAX_RATES = (
    ("us-ca-sales", "California sales tax", "7.250", "US", "CA"),
    ("us-ny-sales", "New York sales tax", "4.000", "US", "NY"),
    ("es-vat-21", "Spain VAT", "21.000", "ES", ""),
    ("de-vat-19", "Germany VAT", "19.000", "DE", ""),
    ("fr-vat-20", "France VAT", "20.000", "FR", ""),
    ("gb-vat-20", "United Kingdom VAT", "20.000", "GB", ""),
    ("mx-iva-16", "Mexico IVA", "16.000", "MX", ""),
)
_TAX_BY_COUNTRY = {
    "US": "us-ca-sales",
    "ES": "es-vat-21",
    "DE": "de-vat-19",
    "FR": "fr-vat-20",
    "GB": "gb-vat-20",
    "MX": "mx-iva-16",
}

_TELEMETRY = (
    ("page_view", "dashboard.viewed", "/app/dashboard", TelemetryEvent.DeviceType.DESKTOP),
    ("page_view", "licenses.viewed", "/app/licenses", TelemetryEvent.DeviceType.DESKTOP),
    ("page_view", "roi.viewed", "/app/analytics/roi", TelemetryEvent.DeviceType.TABLET),
    ("feature_use", "batch.created", "/app/batches/new", TelemetryEvent.DeviceType.DESKTOP),
    ("feature_use", "task.run", "/app/tasks/new", TelemetryEvent.DeviceType.MOBILE),
    ("feature_use", "report.exported", "/app/analytics/roi", TelemetryEvent.DeviceType.DESKTOP),
    ("feature_use", "api_key.created", "/app/settings/api-keys", TelemetryEvent.DeviceType.DESKTOP),
    ("error", "upload.failed", "/app/batches/new", TelemetryEvent.DeviceType.MOBILE),
    ("app", "desktop.started", "", TelemetryEvent.DeviceType.DESKTOP),
    ("app", "desktop.license_checked", "", TelemetryEvent.DeviceType.SERVER),
)

_USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "CELAEST-Desktop/1.1.0 (Windows 11; x64)",
)
_DEVICES = (
    {"browser": "Firefox 128", "os": "Windows 11", "device": "desktop"},
    {"browser": "Safari 17", "os": "macOS 14", "device": "desktop"},
    {"browser": "Safari", "os": "iOS 17", "device": "mobile"},
    {"client": "CELAEST Desktop 1.1.0", "os": "Windows 11", "device": "desktop"},
)

_BENCH_NAMES = ("Northwind", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay", "Soylent", "Tyrell", "Wonka")
_BENCH_TRADES = ("Logistics", "Retail", "Health", "Legal", "Media", "Energy", "Foods", "Labs")
_BENCH_COUNTRIES = ("US", "ES", "DE", "FR", "GB", "MX")
_BENCH_ROLES = ("owner", "admin", "member", "viewer")


def _person_email(org_slug: str, role: str) -> str:
    return f"{role}@{org_slug}.celaest.local"


# --------------------------------------------------------------------------------------------
# Shared state of one run
# --------------------------------------------------------------------------------------------


@dataclass
class _Demo:
    now: datetime
    orgs: dict[str, Organization] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)  # by email
    plans: dict[str, SubscriptionPlan] = field(default_factory=dict)
    licenses: dict[tuple[str, str], License] = field(default_factory=dict)  # (org slug, name)
    ai_models: dict[str, AIModel] = field(default_factory=dict)  # by model_id
    api_keys: dict[str, AIApiKey] = field(default_factory=dict)  # by key name
    prompts: dict[tuple[str, int], Prompt] = field(default_factory=dict)  # (slug, version)
    categories: dict[str, ProductCategory] = field(default_factory=dict)
    products: dict[str, Product] = field(default_factory=dict)
    releases: dict[tuple[str, str], ProductRelease] = field(default_factory=dict)
    gateways: dict[str, PaymentGateway] = field(default_factory=dict)
    coupons: dict[str, Coupon] = field(default_factory=dict)
    tax_rates: dict[str, TaxRate] = field(default_factory=dict)
    orders: dict[str, Order] = field(default_factory=dict)
    bindings: dict[tuple[str, str], LicenseIpBinding] = field(default_factory=dict)
    webhooks: dict[str, Webhook] = field(default_factory=dict)
    order_numbers: _NumberAllocator = field(default_factory=lambda: _NumberAllocator(Order, "order_number", "ORD"))
    invoice_numbers: _NumberAllocator = field(
        default_factory=lambda: _NumberAllocator(Invoice, "invoice_number", "INV")
    )

    @property
    def staff(self) -> User:
        return self.users[ADMIN_EMAIL]

    def person(self, org_slug: str, role: str) -> User:
        return self.users[_person_email(org_slug, role)]

    def active_prompt(self, slug: str) -> Prompt:
        return max((p for (s, _), p in self.prompts.items() if s == slug), key=lambda p: p.version)

    def default_model(self, provider: str) -> AIModel:
        candidates = sorted(
            (m for m in self.ai_models.values() if m.provider == provider), key=lambda m: not m.is_default
        )
        return candidates[0]

    @property
    def organization_ids(self) -> list[uuid.UUID]:
        return [org.pk for org in self.orgs.values()]


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


def demo_seed(
    *, scale: int = 0, credentials_path: Path | None = None, stdout: OutputStream | None = None
) -> DemoCredentials:
    """Seed the base demo (and ``scale`` units of benchmark volume); return the two working logins.

    Idempotent: a second run with the same ``scale`` adds no row. Each module is seeded in its own
    transaction, so a failure leaves whole modules, and a rerun completes the rest.
    """
    if scale < 0:
        raise DemoSeedError("scale must be 0 (base demo only) or a positive number of benchmark units")
    credentials = demo_credentials_resolve(path=credentials_path or default_credentials_path(), stdout=stdout)
    demo = _Demo(now=timezone.now())

    with _section("identity", [Organization, User], stdout):
        _seed_identity(demo, credentials=credentials)
    with _section("licensing", [SubscriptionPlan, License], stdout):
        _seed_plans(demo)
        _seed_licenses(demo)
    with _section("aimesh", [AIModel, AIApiKey, Prompt], stdout):
        _seed_ai_catalogue(demo)
    with _section("marketplace catalogue", [ProductCategory, Product, ProductRelease], stdout):
        _seed_catalogue(demo)
    with _section("billing", [PaymentGateway, PaymentMethod, Coupon, TaxRate, Order, OrderItem, Invoice], stdout):
        _seed_billing(demo)
    with _section("marketplace ownership", [CustomerAsset, AssetDownload, ProductReview], stdout):
        _seed_ownership(demo)
    with _section("ipcontrol", [LicenseIpBinding, LicenseValidation, LicenseCollision], stdout):
        _seed_ipcontrol(demo)
    with _section("operations", [TaskBatch, ProcessedTask], stdout):
        _seed_operations(demo)
    with _section("settings", [UserSession, UserApiKey, Webhook, WebhookDelivery, SystemConfig, FeatureFlag], stdout):
        _seed_settings(demo)
        _retire_outside_urls()
    with _section("audit", [AuditLog, SystemEvent], stdout):
        _seed_audit(demo)
    with _section("analytics telemetry", [TelemetryEvent], stdout):
        _seed_telemetry(demo)

    organization_ids = demo.organization_ids
    if scale:
        organization_ids += _seed_bench(demo, scale=scale, stdout=stdout)

    with _section("billing numbering", [DocumentSequence], stdout):
        document_sequences_sync()  # numbers above were allocated here, outside the sequences
    with _section("derived (roi, usage)", [RoiMetric, LicenseUsageLog], stdout):
        _refresh_derived(demo, organization_ids=organization_ids)
    return credentials


# --------------------------------------------------------------------------------------------
# identity
# --------------------------------------------------------------------------------------------


def _seed_identity(demo: _Demo, *, credentials: DemoCredentials) -> None:
    for slug, spec in _ORGANIZATIONS.items():
        org, _ = Organization.all_objects.get_or_create(
            slug=slug, defaults={**spec, "created_at": demo.now - timedelta(days=400)}
        )
        demo.orgs[slug] = org
        for role, first_name, last_name in _PEOPLE[slug]:
            email = _person_email(slug, role)
            demo.users[email], _ = User.all_objects.get_or_create(
                email=email,
                defaults={
                    "organization": org,
                    "role": role,
                    "first_name": first_name,
                    "last_name": last_name,
                    "scopes": _ROLE_SCOPES[role],
                    "preferences": {"theme": "system", "locale": "es-ES" if slug == SECOND_ORG_SLUG else "en-US"},
                    "password": _UNUSABLE_PASSWORD,
                    "created_at": demo.now - timedelta(days=380),
                },
            )

    staff, _ = User.all_objects.get_or_create(
        email=ADMIN_EMAIL,
        defaults={"first_name": "Platform", "last_name": "Admin", "password": _UNUSABLE_PASSWORD},
    )
    _ensure_login(staff, password=credentials.admin.password, is_staff=True, is_superuser=True, organization=None)
    demo.users[ADMIN_EMAIL] = staff
    _ensure_login(
        demo.users[OWNER_EMAIL],
        password=credentials.owner.password,
        is_staff=False,
        is_superuser=False,
        organization=demo.orgs[DEMO_ORG_SLUG],
        role=User.Role.OWNER,
    )


def _ensure_login(
    user: User,
    *,
    password: str,
    is_staff: bool,
    is_superuser: bool,
    organization: Organization | None,
    role: str | None = None,
) -> None:
    """Make the printed login work: live, active, the right flags, and the printed password.

    The password is only re-set when it differs, so existing sessions of the user survive a rerun.
    """
    wanted = {
        "is_active": True,
        "deleted_at": None,
        "is_staff": is_staff,
        "is_superuser": is_superuser,
        "organization_id": organization.pk if organization else None,
    }
    if role is not None:
        wanted["role"] = role
    changed = [name for name, value in wanted.items() if getattr(user, name) != value]
    for name in changed:
        setattr(user, name, wanted[name])
    if not user.check_password(password):
        user.set_password(password)
        changed.append("password")
    if changed:
        user.save()


# --------------------------------------------------------------------------------------------
# licensing
# --------------------------------------------------------------------------------------------


def _seed_plans(demo: _Demo) -> None:
    for spec in _PLANS:
        defaults = {key: value for key, value in spec.items() if key != "code"}
        demo.plans[spec["code"]], _ = SubscriptionPlan.objects.get_or_create(code=spec["code"], defaults=defaults)


def _seed_licenses(demo: _Demo) -> None:
    for org_slug, name, plan_code, status, issued_days_ago, expires_in_days, extra in _LICENSES:
        issued = demo.now - timedelta(days=issued_days_ago)
        defaults = {
            "organization": demo.orgs[org_slug],
            "plan": demo.plans[plan_code],
            "status": status,
            "license_key": license_key_generate,
            "created_at": issued,
            "expires_at": demo.now + timedelta(days=expires_in_days),
            "notes": f"Demo license ({name}).",
            **extra,
        }
        if status == License.Status.SUSPENDED:
            defaults["suspended_at"] = demo.now - timedelta(days=3)
        if status == License.Status.REVOKED:
            defaults["revoked_at"] = demo.now - timedelta(days=7)
        license_, created = License.all_objects.get_or_create(
            pk=demo_uuid("license", org_slug, name), defaults=defaults
        )
        if created:
            _backdate_issued_at([license_.pk])
        demo.licenses[(org_slug, name)] = license_


# --------------------------------------------------------------------------------------------
# aimesh
# --------------------------------------------------------------------------------------------


def _seed_ai_catalogue(demo: _Demo) -> None:
    for provider, model_id, display, caps, max_in, max_out, p_in, p_out, p_cached, is_default in _AI_MODELS:
        demo.ai_models[model_id], _ = AIModel.objects.get_or_create(
            provider=provider,
            model_id=model_id,
            defaults={
                "display_name": display,
                "capabilities": caps,
                "max_tokens_input": max_in,
                "max_tokens_output": max_out,
                "cost_per_1k_input": Decimal(p_in),
                "cost_per_1k_output": Decimal(p_out),
                "cost_per_1k_cached_input": Decimal(p_cached),
                "is_default": is_default,
            },
        )

    base_url = os.environ.get(FAKE_PROVIDER_URL_ENV) or FAKE_PROVIDER_URL_DEFAULT
    for provider, key_name, secret_prefix, priority, rpm, healthy in _API_KEYS:
        secret = secret_prefix + secrets.token_urlsafe(32)
        defaults = {
            "key_encrypted": encrypt(secret),
            "key_hint": secret[-4:],
            "base_url": base_url,
            "priority": priority,
            "rate_limit_rpm": rpm,
            "is_healthy": healthy,
            "usage_count": 0,
            "last_checked_at": demo.now - timedelta(minutes=5),
        }
        if not healthy:
            defaults.update(
                consecutive_failures=3,
                cooldown_until=demo.now + timedelta(minutes=10),
                last_error="429 Too Many Requests: rate limit reached for requests per minute",
            )
        key, _ = AIApiKey.objects.get_or_create(provider=provider, key_name=key_name, defaults=defaults)
        if key.base_url != base_url:
            # The fake provider's address is set per machine: follow the environment.
            key.base_url = base_url
            key.save(update_fields=["base_url", "updated_at"])
        demo.api_keys[key_name] = key

    for spec in _PROMPTS:
        defaults = {
            key: value
            for key, value in spec.items()
            if key not in ("slug", "version", "parent", "preferred_model", "is_active")
        }
        defaults["preferred_model"] = demo.ai_models[spec["preferred_model"]] if spec["preferred_model"] else None
        defaults["parent"] = demo.prompts[(spec["slug"], spec["parent"])] if spec.get("parent") else None
        defaults["created_by"] = demo.staff
        defaults["is_active"] = (
            spec["is_active"] and not Prompt.objects.filter(slug=spec["slug"], is_active=True).exists()
        )
        prompt, _ = Prompt.objects.get_or_create(slug=spec["slug"], version=spec["version"], defaults=defaults)
        demo.prompts[(spec["slug"], spec["version"])] = prompt

    # Each prompt falls back to the other provider's default model when its own has no working key.
    for prompt in demo.prompts.values():
        own = prompt.preferred_model.provider if prompt.preferred_model else Provider.OPENAI
        fallback = next((m for m in demo.ai_models.values() if m.provider != own and m.is_default), None)
        if fallback is not None:
            PromptFallbackModel.objects.get_or_create(prompt=prompt, model=fallback, defaults={"position": 1})


# --------------------------------------------------------------------------------------------
# marketplace catalogue
# --------------------------------------------------------------------------------------------


def _seed_catalogue(demo: _Demo) -> None:
    for slug, name, parent_slug, sort_order in _CATEGORIES:
        demo.categories[slug], _ = ProductCategory.objects.get_or_create(
            slug=slug,
            defaults={
                "name": name,
                "parent": demo.categories[parent_slug] if parent_slug else None,
                "sort_order": sort_order,
            },
        )

    for slug, name, category, price, status, plan, license_days, asset_days, summary in _PRODUCTS:
        published = status != Product.Status.DRAFT
        demo.products[slug], _ = Product.all_objects.get_or_create(
            slug=slug,
            defaults={
                "name": name,
                "category": demo.categories[category],
                "summary": summary,
                "description": f"{summary}\n\nSold by CELAEST. Prices exclude tax.",
                "price": Decimal(price),
                "status": status,
                "plan": demo.plans[plan] if plan else None,
                "license_term_days": license_days,
                "asset_term_days": asset_days,
                "published_at": demo.now - timedelta(days=120) if published else None,
                "created_at": demo.now - timedelta(days=150),
            },
        )

    artifact = finders.find(DEMO_RELEASE_FILE)
    content = Path(artifact).read_bytes()
    for product_slug, version, status, days_ago, notes in _RELEASES:
        demo.releases[(product_slug, version)], _ = ProductRelease.objects.get_or_create(
            product=demo.products[product_slug],
            version=version,
            defaults={
                "status": status,
                "release_notes": notes,
                "download_url": static(DEMO_RELEASE_FILE),
                "checksum_sha256": hashlib.sha256(content).hexdigest(),
                "file_size": len(content),
                "published_at": demo.now - timedelta(days=days_ago) if status != ProductRelease.Status.DRAFT else None,
                "created_at": demo.now - timedelta(days=days_ago),
            },
        )


# --------------------------------------------------------------------------------------------
# billing
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Amounts:
    subtotal: Decimal
    discount: Decimal
    tax: Decimal
    total: Decimal


def _order_amounts(
    *, lines: Sequence[tuple[Decimal, int]], coupon: Coupon | None, tax_percent: Decimal, currency: str
) -> _Amounts:
    """Subtotal, coupon discount, tax on the discounted amount and total, each rounded once, half up."""
    subtotal = quantize_money(sum((price * qty for price, qty in lines), Decimal("0")), currency)
    discount = Decimal("0")
    if coupon is not None:
        if coupon.discount_type == Coupon.DiscountType.PERCENTAGE:
            discount = subtotal * coupon.discount_value / 100
        else:
            discount = min(coupon.discount_value, subtotal)
    discount = quantize_money(discount, currency)
    tax = quantize_money((subtotal - discount) * tax_percent / 100, currency)
    return _Amounts(subtotal=subtotal, discount=discount, tax=tax, total=subtotal - discount + tax)


def _gateway_fee(gateway: PaymentGateway, total: Decimal, currency: str) -> Decimal:
    if total <= 0:
        return Decimal("0")
    return quantize_money(total * gateway.fee_percentage / 100 + gateway.fee_fixed, currency)


def _build_order(
    demo: _Demo,
    *,
    pk: uuid.UUID,
    organization: Organization,
    user_id: uuid.UUID,
    user_name: str,
    gateway: PaymentGateway,
    status: str,
    lines: Sequence[tuple[Product, int]],
    coupon: Coupon | None,
    tax_rate: TaxRate,
    created_at: datetime,
) -> tuple[Order, list[OrderItem], Invoice | None]:
    """An order with its items, and its invoice when it was paid (or paid and refunded); unsaved."""
    currency = "USD"
    amounts = _order_amounts(
        lines=[(product.price, qty) for product, qty in lines],
        coupon=coupon,
        tax_percent=tax_rate.rate,
        currency=currency,
    )
    paid = status in (Order.Status.PAID, Order.Status.REFUNDED)
    paid_at = created_at + timedelta(minutes=7) if paid else None
    order = Order(
        id=pk,
        order_number=demo.order_numbers.next(created_at.year),
        organization=organization,
        user_id=user_id,
        gateway=gateway,
        status=status,
        currency=currency,
        subtotal=amounts.subtotal,
        discount_total=amounts.discount,
        tax_total=amounts.tax,
        total=amounts.total,
        tax_rate=tax_rate,
        tax_rate_percent=tax_rate.rate,
        coupon=coupon,
        gateway_fee=_gateway_fee(gateway, amounts.total, currency) if paid else Decimal("0"),
        gateway_reference=f"{'pi' if gateway.provider == 'stripe' else 'bt'}_{pk.hex[:24]}" if paid else "",
        paid_at=paid_at,
        cancelled_at=created_at + timedelta(hours=2) if status == Order.Status.CANCELLED else None,
        refunded_at=created_at + timedelta(days=3) if status == Order.Status.REFUNDED else None,
        created_at=created_at,
    )
    items = [
        OrderItem(
            id=demo_uuid("order-item", pk, position),
            order=order,
            product=product,
            description=product.name,
            quantity=qty,
            unit_price=product.price,
            total=product.price * qty,
            created_at=created_at,
        )
        for position, (product, qty) in enumerate(lines)
    ]
    invoice = None
    if paid:
        invoice = Invoice(
            id=demo_uuid("invoice", pk),
            invoice_number=demo.invoice_numbers.next(created_at.year),
            organization=organization,
            order=order,
            user_id=user_id,
            status=Invoice.Status.CREDITED if status == Order.Status.REFUNDED else Invoice.Status.PAID,
            currency=currency,
            subtotal=amounts.subtotal,
            discount_total=amounts.discount,
            tax_total=amounts.tax,
            total=amounts.total,
            billing_details={
                "name": organization.name,
                "email": organization.email,
                "contact": user_name,
                "country": organization.settings.get("country", ""),
            },
            issued_at=paid_at,
            paid_at=paid_at,
            voided_at=created_at + timedelta(days=3) if status == Order.Status.REFUNDED else None,
            created_at=paid_at,
        )
    return order, items, invoice


def _seed_billing(demo: _Demo) -> None:
    gateways = (
        (
            "manual",
            "Bank transfer",
            PaymentGateway.Provider.MANUAL,
            PaymentGateway.Status.ACTIVE,
            "0.00",
            "0",
            {
                "instructions": "Transfer to IBAN ES91 2100 0418 4502 0005 1332, reference: order number.",
                "terms_days": 15,
            },
        ),
        (
            "stripe",
            "Stripe (cards)",
            PaymentGateway.Provider.STRIPE,
            PaymentGateway.Status.TEST,
            "2.90",
            "0.30",
            {"statement_descriptor": "CELAEST", "capture": "automatic"},
        ),
    )
    for code, name, provider, status, fee_pct, fee_fixed, config in gateways:
        demo.gateways[code], _ = PaymentGateway.objects.get_or_create(
            code=code,
            defaults={
                "name": name,
                "provider": provider,
                "status": status,
                "fee_percentage": Decimal(fee_pct),
                "fee_fixed": Decimal(fee_fixed),
                "config": config,
            },
        )

    for code, name, rate, country, region in _TAX_RATES:
        demo.tax_rates[code], _ = TaxRate.objects.get_or_create(
            code=code, defaults={"name": name, "rate": Decimal(rate), "country_code": country, "region": region}
        )

    coupons = (
        ("WELCOME10", "10% off your first order", Coupon.DiscountType.PERCENTAGE, "10.00", None, 0, -90, 275, True),
        ("SPRING25", "25 USD off in spring", Coupon.DiscountType.FIXED, "25.00", 100, 37, -120, -60, True),
        (
            "LAUNCH50",
            "Launch week: 50% off (used up)",
            Coupon.DiscountType.PERCENTAGE,
            "50.00",
            5,
            5,
            -200,
            -190,
            False,
        ),
    )
    for code, description, kind, value, max_redemptions, redeemed, from_days, until_days, active in coupons:
        demo.coupons[code], _ = Coupon.objects.get_or_create(
            code=code,
            defaults={
                "description": description,
                "discount_type": kind,
                "discount_value": Decimal(value),
                "max_redemptions": max_redemptions,
                "times_redeemed": redeemed,
                "valid_from": demo.now + timedelta(days=from_days),
                "valid_until": demo.now + timedelta(days=until_days),
                "is_active": active,
            },
        )

    methods = (
        ("demo-visa", DEMO_ORG_SLUG, "stripe", PaymentMethod.Type.CARD, PaymentMethod.CardBrand.VISA, "4242", True),
        (
            "demo-mc",
            DEMO_ORG_SLUG,
            "stripe",
            PaymentMethod.Type.CARD,
            PaymentMethod.CardBrand.MASTERCARD,
            "4444",
            False,
        ),
        ("acme-bank", SECOND_ORG_SLUG, "manual", PaymentMethod.Type.BANK_TRANSFER, "", "", True),
    )
    for key, org_slug, gateway, kind, brand, last4, is_default in methods:
        owner = demo.person(org_slug, "owner")
        pk = demo_uuid("payment-method", key)
        if PaymentMethod.objects.filter(pk=pk).exists():
            continue
        PaymentMethod.objects.create(
            id=pk,
            organization=demo.orgs[org_slug],
            user=owner,
            gateway=demo.gateways[gateway],
            type=kind,
            card_brand=brand,
            card_last4=last4,
            exp_month=(8 if last4 else None),
            exp_year=(demo.now.year + 2 if last4 else None),
            gateway_token=f"pm_{pk.hex[:24]}",
            # One default per user (a partial unique constraint): keep one set by hand.
            is_default=is_default and not PaymentMethod.objects.filter(user=owner, is_default=True).exists(),
        )

    desktop, extractor, workshop = (demo.products[s] for s in _PUBLISHED_PRODUCTS)
    orders = (
        # key, org, gateway, status, lines, coupon, days ago
        ("demo-1", DEMO_ORG_SLUG, "stripe", Order.Status.PAID, [(desktop, 1), (extractor, 2)], "WELCOME10", 28),
        ("demo-2", DEMO_ORG_SLUG, "manual", Order.Status.PENDING, [(workshop, 1)], None, 2),
        ("demo-3", DEMO_ORG_SLUG, "stripe", Order.Status.CANCELLED, [(extractor, 1)], None, 14),
        ("acme-1", SECOND_ORG_SLUG, "manual", Order.Status.PAID, [(desktop, 5)], None, 60),
        ("acme-2", SECOND_ORG_SLUG, "stripe", Order.Status.REFUNDED, [(extractor, 1)], "WELCOME10", 21),
    )
    # Numbers follow time, as the billing service would have handed them out.
    for key, org_slug, gateway, status, lines, coupon, days_ago in sorted(orders, key=lambda o: -o[-1]):
        pk = demo_uuid("order", key)
        existing = Order.objects.filter(pk=pk).first()
        if existing is not None:
            demo.orders[key] = existing
            continue
        org = demo.orgs[org_slug]
        owner = demo.person(org_slug, "owner")
        order, items, invoice = _build_order(
            demo,
            pk=pk,
            organization=org,
            user_id=owner.pk,
            user_name=owner.full_name,
            gateway=demo.gateways[gateway],
            status=status,
            lines=lines,
            coupon=demo.coupons[coupon] if coupon else None,
            tax_rate=demo.tax_rates[_TAX_BY_COUNTRY[org.settings.get("country", "US")]],
            created_at=demo.now - timedelta(days=days_ago, hours=3),
        )
        order.save(force_insert=True)
        OrderItem.objects.bulk_create(items)
        if invoice is not None:
            invoice.save(force_insert=True)
        demo.orders[key] = order


# --------------------------------------------------------------------------------------------
# marketplace ownership: assets, downloads, reviews
# --------------------------------------------------------------------------------------------


def _seed_ownership(demo: _Demo) -> None:
    assets = (
        # key, org, product, order, license, status
        ("demo-desktop", DEMO_ORG_SLUG, "celaest-desktop", "demo-1", "primary", CustomerAsset.Status.ACTIVE),
        ("demo-extractor", DEMO_ORG_SLUG, "invoice-extractor", "demo-1", None, CustomerAsset.Status.ACTIVE),
        ("acme-desktop", SECOND_ORG_SLUG, "celaest-desktop", "acme-1", "primary", CustomerAsset.Status.ACTIVE),
        ("acme-extractor", SECOND_ORG_SLUG, "invoice-extractor", "acme-2", None, CustomerAsset.Status.REVOKED),
    )
    for key, org_slug, product_slug, order_key, license_name, status in assets:
        order = demo.orders[order_key]
        asset, _ = CustomerAsset.objects.get_or_create(
            pk=demo_uuid("asset", key),
            defaults={
                "organization": demo.orgs[org_slug],
                "product": demo.products[product_slug],
                "user": demo.person(org_slug, "owner"),
                "license": demo.licenses[(org_slug, license_name)] if license_name else None,
                "order": order,
                "status": status,
                "granted_at": order.paid_at or order.created_at,
                "revoked_at": order.refunded_at if status == CustomerAsset.Status.REVOKED else None,
                "created_at": order.paid_at or order.created_at,
            },
        )
        releases = [
            release
            for (slug, _), release in demo.releases.items()
            if slug == product_slug and release.status == ProductRelease.Status.PUBLISHED
        ]
        for n, release in enumerate(releases):
            for who in ("owner", "admin"):
                AssetDownload.objects.get_or_create(
                    pk=demo_uuid("download", key, release.version, who),
                    defaults={
                        "asset": asset,
                        "release": release,
                        "user": demo.person(org_slug, who),
                        "ip_address": f"203.0.113.{20 + n}" if org_slug == DEMO_ORG_SLUG else "2001:db8::51",
                        "user_agent": _USER_AGENTS[n % 2],
                        "created_at": max(asset.granted_at, release.published_at or asset.granted_at)
                        + timedelta(hours=5 + n),
                    },
                )

    reviews = (
        (DEMO_ORG_SLUG, "owner", "celaest-desktop", 5, "Batches saved us a full day a week", True),
        (DEMO_ORG_SLUG, "member", "celaest-desktop", 4, "Solid, PDF export could be faster", False),
        (DEMO_ORG_SLUG, "owner", "invoice-extractor", 4, "Accurate on EUR and USD invoices", True),
        (SECOND_ORG_SLUG, "owner", "celaest-desktop", 3, "Works, but machine limits confuse our IT", True),
        (SECOND_ORG_SLUG, "admin", "invoice-extractor", 2, "Struggled with handwritten invoices", False),
    )
    for org_slug, role, product_slug, rating, title, verified in reviews:
        ProductReview.objects.get_or_create(
            product=demo.products[product_slug],
            user=demo.person(org_slug, role),
            defaults={
                "rating": rating,
                "title": title,
                "comment": f"{title}. Reviewed after a few weeks of daily use.",
                "is_verified": verified,
                "created_at": demo.now - timedelta(days=10 + rating),
            },
        )


# --------------------------------------------------------------------------------------------
# ipcontrol
# --------------------------------------------------------------------------------------------

# org, license name, binding name, ip, hostname, active
_BINDINGS = (
    (DEMO_ORG_SLUG, "primary", "ws-dana", "203.0.113.10", "DANA-LAPTOP", True),
    (DEMO_ORG_SLUG, "primary", "ws-marcus", "203.0.113.11", "MARCUS-WS", True),
    (DEMO_ORG_SLUG, "primary", "build-01", "198.51.100.20", "ci-build-01", True),
    (DEMO_ORG_SLUG, "primary", "old-laptop", "203.0.113.99", "OLD-LAPTOP", False),
    (DEMO_ORG_SLUG, "trial", "ws-priya", "203.0.113.12", "PRIYA-MBP", True),
    (DEMO_ORG_SLUG, "trial", "ws-tom", "203.0.113.13", "TOM-PC", True),
    (SECOND_ORG_SLUG, "primary", "plant-a", "192.0.2.50", "PLANTA-SRV", True),
    (SECOND_ORG_SLUG, "primary", "plant-b", "2001:db8::51", "PLANTB-SRV", True),
)


def _seed_ipcontrol(demo: _Demo) -> None:
    for org_slug, license_name, name, ip, hostname, active in _BINDINGS:
        first_seen = demo.now - timedelta(days=25 + len(name))
        demo.bindings[(org_slug, name)], _ = LicenseIpBinding.objects.get_or_create(
            license=demo.licenses[(org_slug, license_name)],
            machine_id=_fingerprint("demo-machine", org_slug, name),
            defaults={
                "organization": demo.orgs[org_slug],
                "ip_address": ip,
                "hostname": hostname,
                "is_active": active,
                "first_seen": first_seen,
                "activated_at": first_seen,
                "last_seen": demo.now - timedelta(minutes=7 if active else 60 * 24 * 20),
                "deactivated_at": None if active else demo.now - timedelta(days=20),
                "activation_count": 1 if active else 2,
                "created_at": first_seen,
            },
        )

    collisions = (
        # key, org, license, a, b, type, severity, resolved days ago, details
        (
            "demo-cloned",
            DEMO_ORG_SLUG,
            "primary",
            "build-01",
            None,
            LicenseCollision.CollisionType.CLONED_MACHINE,
            LicenseCollision.Severity.HIGH,
            None,
            {"ips": ["198.51.100.20", "198.51.100.77"], "window_minutes": 15, "validations": 42},
        ),
        (
            "demo-over-limit",
            DEMO_ORG_SLUG,
            "primary",
            "ws-dana",
            "old-laptop",
            LicenseCollision.CollisionType.OVER_LIMIT,
            LicenseCollision.Severity.MEDIUM,
            18,
            {"max_machines": 3, "active_machines": 4},
        ),
        (
            "acme-churn",
            SECOND_ORG_SLUG,
            "primary",
            "plant-b",
            None,
            LicenseCollision.CollisionType.ACTIVATION_CHURN,
            LicenseCollision.Severity.LOW,
            None,
            {"activations_last_hour": 6},
        ),
    )
    for key, org_slug, license_name, a, b, kind, severity, resolved_days_ago, details in collisions:
        detected = demo.now - timedelta(days=(resolved_days_ago or 0) + 2)
        resolved = demo.now - timedelta(days=resolved_days_ago) if resolved_days_ago else None
        LicenseCollision.objects.get_or_create(
            pk=demo_uuid("collision", key),
            defaults={
                "organization": demo.orgs[org_slug],
                "license": demo.licenses[(org_slug, license_name)],
                "ip_binding_a": demo.bindings[(org_slug, a)],
                "ip_binding_b": demo.bindings[(org_slug, b)] if b else None,
                "collision_type": kind,
                "severity": severity,
                "details": details,
                "detected_at": detected,
                "last_seen_at": resolved or demo.now - timedelta(minutes=12),
                "resolved_at": resolved,
                "auto_resolved": resolved is not None,
                "resolution_note": "Anomaly stopped for 24 h" if resolved else "",
                "created_at": detected,
            },
        )

    _seed_validations(demo)


def _seed_validations(demo: _Demo) -> None:
    rng = random.Random("validations")
    plans: list[tuple[str, License | None, LicenseIpBinding | None, bool, str, str]] = []
    for (org_slug, _), binding in demo.bindings.items():
        license_ = binding.license
        valid = binding.is_active and license_.status in (License.Status.ACTIVE, License.Status.TRIAL)
        code = "VALID" if valid else "NO_MACHINE"
        plans += [(org_slug, license_, binding, valid, code, "")] * 20
    failures = (
        ("suspended", "SUSPENDED", "License is suspended: payment overdue"),
        ("expired", "EXPIRED", "License expired"),
        ("revoked", "REVOKED", "License was revoked"),
    )
    for license_name, code, reason in failures:
        plans += [(DEMO_ORG_SLUG, demo.licenses[(DEMO_ORG_SLUG, license_name)], None, False, code, reason)] * 4
    plans += [(DEMO_ORG_SLUG, demo.licenses[(DEMO_ORG_SLUG, "trial")], None, False, "TOO_MANY_MACHINES", "2 of 2")] * 3
    plans += [(None, None, None, False, "NOT_FOUND", "No license with this key")] * 5

    def build(i: int, pk: uuid.UUID) -> LicenseValidation:
        org_slug, license_, binding, valid, code, reason = plans[i]
        return LicenseValidation(
            id=pk,
            license=license_,
            organization=demo.orgs[org_slug] if org_slug else None,
            ip_binding=binding,
            ip_address=binding.ip_address if binding else f"198.51.100.{rng.randint(100, 200)}",
            machine_id=binding.machine_id if binding else _fingerprint("unknown", i),
            hostname=binding.hostname if binding else f"host-{i}",
            is_valid=valid,
            result_code=code,
            failure_reason=reason if reason != "2 of 2" else "Too many machines: 2 of 2 already active",
            created_at=_spread(rng, demo.now),
        )

    _insert_missing(LicenseValidation, [demo_uuid("validation", i) for i in range(len(plans))], build)


# --------------------------------------------------------------------------------------------
# operations
# --------------------------------------------------------------------------------------------


def _task_cost(model: AIModel, *, tokens_input: int, tokens_output: int, tokens_cached: int) -> Decimal:
    """The cost of one request from the model's prices per 1k tokens (cached input is cheaper)."""
    cost = (
        Decimal(tokens_input - tokens_cached) * model.cost_per_1k_input
        + Decimal(tokens_cached) * model.cost_per_1k_cached_input
        + Decimal(tokens_output) * model.cost_per_1k_output
    ) / 1000
    return cost.quantize(_COST_QUANTUM, rounding=ROUND_HALF_UP)


def _task_io(rng: random.Random, prompt: Prompt) -> tuple[str, dict, str, dict | None]:
    """Input text and variables, output text and JSON for one run of ``prompt``."""
    if prompt.slug == "extract-invoice":
        text, vendor, total, currency = rng.choice(_INVOICES)
        output = {"vendor": vendor, "total": total, "currency": currency, "due_date": None}
        return text, {"invoice_text": text}, json.dumps(output), output
    if prompt.slug == "translate-text":
        text, translated = rng.choice(_TRANSLATIONS)
        return text, {"text": text, "target_language": "Spanish"}, translated, None
    text = rng.choice(_TICKETS)
    variables = {"ticket_text": text}
    if prompt.version > 1:
        variables["customer_tier"] = rng.choice(["starter", "pro", "enterprise"])
    output = {
        "summary": text.split(".")[0][:90],
        "sentiment": rng.choice(["negative", "neutral", "negative", "positive"]),
        "priority": rng.choice(["high", "normal", "low"]),
    }
    return text, variables, json.dumps(output), output


@dataclass(frozen=True)
class _Router:
    """The routing choices a task can record: a model for each prompt and a key for each provider."""

    models_by_prompt: dict[uuid.UUID, AIModel]
    keys_by_provider: dict[str, list[AIApiKey]]

    @classmethod
    def from_demo(cls, demo: _Demo) -> "_Router":
        models_by_prompt = {
            prompt.pk: prompt.preferred_model or demo.default_model(Provider.OPENAI) for prompt in demo.prompts.values()
        }
        keys: dict[str, list[AIApiKey]] = {}
        for key in sorted(demo.api_keys.values(), key=lambda k: k.priority):
            keys.setdefault(key.provider, []).append(key)
        return cls(models_by_prompt=models_by_prompt, keys_by_provider=keys)

    def key_for(self, rng: random.Random, model: AIModel) -> AIApiKey:
        keys = self.keys_by_provider[model.provider]
        return keys[0] if len(keys) == 1 or rng.random() < 0.85 else rng.choice(keys[1:])


def _task_row(
    *,
    rng: random.Random,
    router: _Router,
    pk: uuid.UUID,
    organization_id: uuid.UUID,
    user_id: uuid.UUID | None,
    license_id: uuid.UUID | None,
    prompt: Prompt,
    status: str,
    created_at: datetime,
    batch_id: uuid.UUID | None = None,
    batch_index: int | None = None,
) -> ProcessedTask:
    """One processed task; tokens and cost only for work that ran (``tokens_total`` is computed by the DB)."""
    model = router.models_by_prompt[prompt.pk]
    routed = status not in (ProcessedTask.Status.PENDING, ProcessedTask.Status.CANCELLED)
    key = router.key_for(rng, model) if routed else None
    input_text, variables, output_text, output_json = _task_io(rng, prompt)
    task = ProcessedTask(
        id=pk,
        organization_id=organization_id,
        user_id=user_id,
        license_id=license_id,
        batch_id=batch_id,
        batch_index=batch_index,
        model=model,
        api_key=key,
        prompt=prompt,
        input_text=input_text,
        input_variables=variables,
        status=status,
        created_at=created_at,
    )
    if status == ProcessedTask.Status.COMPLETED:
        task.tokens_input = rng.randint(250, 3_500)
        task.tokens_cached = task.tokens_input // 2 if rng.random() < 0.25 else 0
        task.tokens_output = rng.randint(60, 900)
        task.cost_usd = _task_cost(
            model, tokens_input=task.tokens_input, tokens_output=task.tokens_output, tokens_cached=task.tokens_cached
        )
        task.execution_time_ms = rng.randint(450, 9_500)
        task.attempts = 1 if rng.random() < 0.9 else 2
        task.output_text = output_text
        task.output_json = output_json
        task.completed_at = created_at + timedelta(milliseconds=task.execution_time_ms)
    elif status == ProcessedTask.Status.FAILED:
        code, message = rng.choice(
            [
                ("provider_rate_limited", "All keys of the provider are rate limited; retries exhausted."),
                ("provider_timeout", "The provider did not answer within 60 s."),
                ("invalid_output", "The model's answer is not valid JSON."),
            ]
        )
        task.error_code = code
        task.error_message = message
        task.attempts = 3
        task.execution_time_ms = rng.randint(2_000, 60_000)
        task.completed_at = created_at + timedelta(milliseconds=task.execution_time_ms)
    elif status == ProcessedTask.Status.RUNNING:
        task.attempts = 1
    return task


# key, org, name, prompt slug, status, total, completed, failed, running, days ago
_BATCHES = (
    ("demo-invoices", DEMO_ORG_SLUG, "Q1 supplier invoices", "extract-invoice", "partially_failed", 24, 22, 2, 0, 12),
    ("demo-triage", DEMO_ORG_SLUG, "Support backlog triage", "summarize-ticket", "running", 40, 15, 1, 1, 0),
    ("demo-translate", DEMO_ORG_SLUG, "Catalogue translation (ES)", "translate-text", "pending", 12, 0, 0, 0, 0),
    ("demo-export", DEMO_ORG_SLUG, "Old ticket export", "summarize-ticket", "cancelled", 30, 5, 0, 0, 6),
    ("acme-reports", SECOND_ORG_SLUG, "Maintenance reports", "summarize-ticket", "completed", 10, 10, 0, 0, 3),
)
_STANDALONE_TASKS = {DEMO_ORG_SLUG: 160, SECOND_ORG_SLUG: 60}
_PROMPT_SLUGS = ("summarize-ticket", "extract-invoice", "translate-text")


def _batch_task_statuses(*, total: int, completed: int, failed: int, running: int, batch_status: str) -> list[str]:
    rest = ProcessedTask.Status.CANCELLED if batch_status == "cancelled" else ProcessedTask.Status.PENDING
    statuses = [ProcessedTask.Status.COMPLETED] * completed + [ProcessedTask.Status.FAILED] * failed
    statuses += [ProcessedTask.Status.RUNNING] * running
    return statuses + [rest] * (total - len(statuses))


def _seed_operations(demo: _Demo) -> None:
    router = _Router.from_demo(demo)
    rng = random.Random("operations")
    for key, org_slug, name, prompt_slug, status, total, completed, failed, running, days_ago in _BATCHES:
        prompt = demo.active_prompt(prompt_slug)
        created = demo.now - timedelta(days=days_ago, hours=2)
        started = created + timedelta(minutes=1) if status != "pending" else None
        finished = started + timedelta(minutes=total) if status in ("completed", "partially_failed") else None
        batch, _ = TaskBatch.objects.get_or_create(
            pk=demo_uuid("batch", key),
            defaults={
                "organization": demo.orgs[org_slug],
                "user": demo.person(org_slug, "admin"),
                "license": demo.licenses[(org_slug, "primary")],
                "prompt": prompt,
                "model": router.models_by_prompt[prompt.pk],
                "name": name,
                "status": status,
                "total_tasks": total,
                "completed_tasks": completed,
                "failed_tasks": failed,
                "started_at": started,
                "finished_at": finished,
                "cancelled_at": created + timedelta(minutes=9) if status == "cancelled" else None,
                "created_at": created,
            },
        )
        statuses = _batch_task_statuses(
            total=total, completed=completed, failed=failed, running=running, batch_status=status
        )

        def build(
            i: int, pk: uuid.UUID, batch=batch, statuses=statuses, prompt=prompt, created=created
        ) -> ProcessedTask:
            return _task_row(
                rng=rng,
                router=router,
                pk=pk,
                organization_id=batch.organization_id,
                user_id=batch.user_id,
                license_id=batch.license_id,
                prompt=prompt,
                status=statuses[i],
                created_at=created + timedelta(seconds=i),
                batch_id=batch.pk,
                batch_index=i,
            )

        _insert_missing(ProcessedTask, [demo_uuid("task", key, i) for i in range(total)], build)

    for org_slug, count in _STANDALONE_TASKS.items():
        org = demo.orgs[org_slug]
        users = [demo.person(org_slug, role) for role in ("owner", "admin", "member")]
        license_ = demo.licenses[(org_slug, "primary")]

        def build(i: int, pk: uuid.UUID, org=org, users=users, license_=license_) -> ProcessedTask:
            created = _spread(rng, demo.now)
            slug = rng.choice(_PROMPT_SLUGS)
            prompt = demo.active_prompt(slug)
            if slug == "summarize-ticket" and created < demo.now - timedelta(days=15):
                prompt = demo.prompts[(slug, 1)]  # the first version was live back then
            status = ProcessedTask.Status.FAILED if rng.random() < 0.06 else ProcessedTask.Status.COMPLETED
            return _task_row(
                rng=rng,
                router=router,
                pk=pk,
                organization_id=org.pk,
                user_id=rng.choice(users).pk,
                license_id=license_.pk,
                prompt=prompt,
                status=status,
                created_at=created,
            )

        _insert_missing(ProcessedTask, [demo_uuid("task", org_slug, i) for i in range(count)], build)


# --------------------------------------------------------------------------------------------
# settings_app
# --------------------------------------------------------------------------------------------


def _webhook_secret() -> str:
    """A Standard Webhooks signing secret: ``whsec_`` and base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _webhook_secret_fields() -> dict[str, str]:
    secret = _webhook_secret()
    return {"secret_encrypted": encrypt(secret), "secret_hash": hash_secret(secret)}


def _user_api_key_fields() -> dict[str, str]:
    """A personal API key; only its hash and a display prefix are stored (nobody sees the demo keys)."""
    key = "cel_" + secrets.token_urlsafe(32)
    return {"key_hash": hash_secret(key), "key_prefix": key[:8]}


def _session_token() -> str:
    return hash_secret(secrets.token_urlsafe(32))


_SYSTEM_CONFIG = (
    ("billing.default_currency", "USD", "Currency of new orders and invoices.", False),
    ("billing.order_number_format", "ORD-{year}-{seq:06d}", "Order numbers, sequential per year.", False),
    ("billing.invoice_number_format", "INV-{year}-{seq:06d}", "Invoice numbers, sequential per year.", False),
    ("aimesh.request_timeout_seconds", 60, "Timeout of one provider request.", False),
    ("aimesh.key_cooldown_seconds", 600, "How long a failing provider key rests before it is tried again.", False),
    ("ipcontrol.collision_window_minutes", 15, "Window in which simultaneous use counts as a collision.", False),
    ("webhooks.max_attempts", 8, "Delivery attempts before an event is given up.", False),
    ("roi.default_hourly_rate", "40.00", "Hourly rate for ROI when an organization sets none.", False),
)


def _delivery_error(status: str, http_status: int | None, *, not_sent: bool) -> str:
    if status != WebhookDelivery.Status.FAILED:
        return ""
    return _PAUSED_ERROR if not_sent else f"HTTP {http_status or 'timeout'}"


def _retire_outside_urls() -> None:
    """Rows an earlier version of this seed pointed at outside hosts (a database that ``bin/dev``
    keeps under ``var/``): their releases now point at the local demo file, their webhooks are
    paused at example URLs. Rows changed since by hand are left alone."""
    ProductRelease.objects.filter(download_url__startswith=_OLD_DOWNLOAD_PREFIX).update(
        download_url=static(DEMO_RELEASE_FILE)
    )
    for old_url, new_url in _OLD_WEBHOOK_URLS.items():
        Webhook.objects.filter(url=old_url).exclude(status=Webhook.Status.DISABLED).update(
            url=new_url, status=Webhook.Status.PAUSED
        )
        Webhook.objects.filter(url=old_url).update(url=new_url)
    Webhook.objects.filter(
        name=BENCH_WEBHOOK_NAME, url__startswith="https://erp.", url__endswith=".example.com/hooks/celaest"
    ).update(status=Webhook.Status.PAUSED)
    WebhookDelivery.objects.filter(
        pk=demo_uuid("delivery", *_NOT_SENT_DELIVERY), status=WebhookDelivery.Status.PENDING
    ).update(status=WebhookDelivery.Status.FAILED, error=_PAUSED_ERROR, next_attempt_at=None, duration_ms=0)


def _seed_settings(demo: _Demo) -> None:
    for email, user in demo.users.items():
        if user.organization_id is None and email != ADMIN_EMAIL:
            continue
        for n, (active, days_ago) in enumerate(((True, 0), (False, 20))):
            last_activity = demo.now - timedelta(days=days_ago, minutes=15 + n)
            device = n + (len(email) % 3)
            UserSession.objects.get_or_create(
                pk=demo_uuid("session", email, n),
                defaults={
                    "user": user,
                    "session_token": _session_token(),
                    "ip_address": f"203.0.113.{40 + len(email) % 50}",
                    "user_agent": _USER_AGENTS[device % len(_USER_AGENTS)],
                    "device_info": _DEVICES[device % len(_DEVICES)],
                    "is_active": active,
                    "last_activity_at": last_activity,
                    "expires_at": last_activity + timedelta(days=14),
                    "revoked_at": None if active else last_activity + timedelta(hours=1),
                    "created_at": last_activity - timedelta(hours=3),
                },
            )

    api_keys = (
        ("demo-ci", DEMO_ORG_SLUG, "owner", "CI pipeline", ["licenses:validate", "tasks:run"], 1_200, False),
        ("demo-reporting", DEMO_ORG_SLUG, "admin", "Reporting (read-only)", ["roi:read", "tasks:read"], 600, False),
        ("demo-old", DEMO_ORG_SLUG, "admin", "Old ERP integration", ["tasks:run"], 600, True),
        ("acme-erp", SECOND_ORG_SLUG, "owner", "ERP connector", ["tasks:run", "licenses:read"], 300, False),
    )
    for key, org_slug, role, name, scopes, rpm, revoked in api_keys:
        UserApiKey.objects.get_or_create(
            pk=demo_uuid("api-key", key),
            defaults={
                "user": demo.person(org_slug, role),
                "name": name,
                **_user_api_key_fields(),
                "scopes": scopes,
                "rate_limit_rpm": rpm,
                "usage_count": 0 if revoked else 1_000 + len(name) * 37,
                "last_used_at": demo.now - timedelta(hours=len(name)),
                "last_used_ip": "198.51.100.20",
                "expires_at": demo.now + timedelta(days=180),
                "revoked_at": demo.now - timedelta(days=30) if revoked else None,
                "created_at": demo.now - timedelta(days=90),
            },
        )

    # Example endpoints, never active: an active one would be sent every event the demo makes
    # (DNS lookups and failed deliveries). Point one at your receiver and resume it to see
    # deliveries (a local receiver needs WEBHOOK_ALLOWED_HOSTS).
    webhooks = (
        (
            "demo-erp",
            DEMO_ORG_SLUG,
            "ERP sync (example endpoint)",
            _OLD_WEBHOOK_URLS["https://erp.demo.example.com/hooks/celaest"],
            ["license.suspended", "license.renewed", "order.paid", "invoice.issued"],
            Webhook.Status.PAUSED,
        ),
        (
            "demo-alerts",
            DEMO_ORG_SLUG,
            "Slack alerts (example endpoint)",
            _OLD_WEBHOOK_URLS["https://hooks.example.com/services/demo-alerts"],
            ["collision.detected", "batch.completed", "batch.failed"],
            Webhook.Status.PAUSED,
        ),
        (
            "acme-portal",
            SECOND_ORG_SLUG,
            "Maintenance portal (example endpoint)",
            _OLD_WEBHOOK_URLS["https://portal.acme.example.com/celaest/events"],
            ["task.completed", "task.failed"],
            Webhook.Status.DISABLED,
        ),
    )
    for key, org_slug, name, url, events, status in webhooks:
        disabled = status == Webhook.Status.DISABLED
        demo.webhooks[key], _ = Webhook.objects.get_or_create(
            pk=demo_uuid("webhook", key),
            defaults={
                "organization": demo.orgs[org_slug],
                "user": demo.person(org_slug, "owner"),
                "name": name,
                "url": url,
                **_webhook_secret_fields(),
                "events": events,
                "status": status,
                "disabled_reason": "Disabled after 5 days of failed deliveries" if disabled else "",
                "failing_since": demo.now - timedelta(days=6) if disabled else None,
                "last_success_at": None if disabled else demo.now - timedelta(hours=3),
                "created_at": demo.now - timedelta(days=50),
            },
        )

    deliveries = (
        # webhook, event, type, attempt, status, http status, minutes ago
        ("demo-erp", "e1", "order.paid", 1, WebhookDelivery.Status.SUCCEEDED, 200, 60 * 24 * 28),
        ("demo-erp", "e2", "invoice.issued", 1, WebhookDelivery.Status.FAILED, 503, 60 * 24 * 28),
        ("demo-erp", "e2", "invoice.issued", 2, WebhookDelivery.Status.SUCCEEDED, 200, 60 * 24 * 28 - 1),
        ("demo-erp", "e3", "license.suspended", 1, WebhookDelivery.Status.FAILED, None, 10),
        # The retry came after the endpoint was paused: recorded, not sent (as the platform does).
        ("demo-erp", "e3", "license.suspended", 2, WebhookDelivery.Status.FAILED, None, 9),
        ("acme-portal", "e4", "task.failed", 1, WebhookDelivery.Status.FAILED, 500, 60 * 24 * 6),
        ("acme-portal", "e4", "task.failed", 2, WebhookDelivery.Status.FAILED, 502, 60 * 24 * 5),
        ("acme-portal", "e4", "task.failed", 3, WebhookDelivery.Status.FAILED, 404, 60 * 24 * 4),
    )
    for webhook_key, event, event_type, attempt, status, http_status, minutes_ago in deliveries:
        webhook = demo.webhooks[webhook_key]
        event_id = "msg_" + demo_uuid("event", webhook_key, event).hex
        not_sent = (webhook_key, event, attempt) == _NOT_SENT_DELIVERY
        created = demo.now - timedelta(minutes=minutes_ago)
        WebhookDelivery.objects.get_or_create(
            pk=demo_uuid("delivery", webhook_key, event, attempt),
            defaults={
                "webhook": webhook,
                "organization_id": webhook.organization_id,
                "event_id": event_id,
                "event_type": event_type,
                "payload": {
                    "type": event_type,
                    "timestamp": created.isoformat(),
                    "data": {"organization_id": str(webhook.organization_id), "object_id": str(demo_uuid(event))},
                },
                "status": status,
                "attempt_number": attempt,
                "response_status": http_status,
                "response_body": '{"ok": true}' if http_status == 200 else "",
                "error": _delivery_error(status, http_status, not_sent=not_sent),
                "duration_ms": 0 if not_sent else 180 + attempt * 40,
                "next_attempt_at": None,  # all settled: nothing for the sweeper to send
                "delivered_at": created if status == WebhookDelivery.Status.SUCCEEDED else None,
                "created_at": created,
            },
        )

    for key, value, description, sensitive in _SYSTEM_CONFIG:
        SystemConfig.objects.get_or_create(
            key=key,
            defaults={"value": value, "description": description, "is_sensitive": sensitive, "updated_by": demo.staff},
        )
    SystemConfig.objects.get_or_create(
        key="integrations.slack_webhook_url",
        defaults={
            "value": "https://hooks.slack.example.com/services/" + secrets.token_urlsafe(24),
            "description": "Where platform alerts are posted. Secret: anyone with the URL can post.",
            "is_sensitive": True,
            "updated_by": demo.staff,
        },
    )

    flags = (
        ("new-dashboard", "The redesigned ROI dashboard.", True, FeatureFlag.TargetType.PERCENTAGE, 25, []),
        ("ai-batch-export", "Export batch results as CSV/XLSX.", True, FeatureFlag.TargetType.ALL, 100, []),
        (
            "anthropic-routing",
            "Route summaries to Anthropic models.",
            True,
            FeatureFlag.TargetType.ORGANIZATIONS,
            0,
            [str(demo.orgs[DEMO_ORG_SLUG].pk)],
        ),
        ("legacy-reports", "The old PDF reports (to be removed).", False, FeatureFlag.TargetType.ALL, 0, []),
    )
    for key, description, enabled, target, percentage, ids in flags:
        FeatureFlag.objects.get_or_create(
            flag_key=key,
            defaults={
                "description": description,
                "is_enabled": enabled,
                "target_type": target,
                "target_percentage": percentage,
                "target_ids": ids,
            },
        )


# --------------------------------------------------------------------------------------------
# audit
# --------------------------------------------------------------------------------------------


def _audit_resource(resource: models.Model | tuple[str, str]) -> tuple[str, str]:
    """The id and the display text of an audited object (never a secret such as a license key)."""
    if isinstance(resource, tuple):
        return resource
    if isinstance(resource, License):
        return str(resource.pk), f"{resource.plan.name} license ({resource.status})"
    return str(resource.pk), str(resource)[:200]


def _seed_audit(demo: _Demo) -> None:
    viewer = _person_email(DEMO_ORG_SLUG, "viewer")
    demo_admin = _person_email(DEMO_ORG_SLUG, "admin")
    acme_owner = _person_email(SECOND_ORG_SLUG, "owner")
    primary = demo.licenses[(DEMO_ORG_SLUG, "primary")]
    suspended = demo.licenses[(DEMO_ORG_SLUG, "suspended")]
    order = demo.orders["demo-1"]
    ci_key = UserApiKey.objects.get(pk=demo_uuid("api-key", "demo-ci"))
    cancelled_batch = TaskBatch.objects.get(pk=demo_uuid("batch", "demo-export"))
    slack_url = SystemConfig.objects.get(key="integrations.slack_webhook_url")
    # key, who, organization, action, resource type, resource (None: the user), changes, source, ip, days ago
    logs = (
        ("staff-login", ADMIN_EMAIL, None, "login", "identity.user", None, {}, "admin", "192.0.2.10", 1),
        ("license-created", ADMIN_EMAIL, DEMO_ORG_SLUG, "create", "licensing.license", primary,
         {"status": [None, "active"], "plan": [None, "pro"]}, "admin", "192.0.2.10", 30),
        ("license-suspended", ADMIN_EMAIL, DEMO_ORG_SLUG, "update", "licensing.license", suspended,
         {"status": ["active", "suspended"], "status_reason": ["", suspended.status_reason]}, "admin", "192.0.2.10", 3),
        ("owner-login", OWNER_EMAIL, DEMO_ORG_SLUG, "login", "identity.user", None, {}, "api", "203.0.113.10", 0),
        ("viewer-failed", viewer, DEMO_ORG_SLUG, "login_failed", "identity.user", None, {"reason": "bad_password"},
         "api", "198.51.100.66", 2),
        ("order-created", OWNER_EMAIL, DEMO_ORG_SLUG, "create", "billing.order", order,
         {"status": [None, "pending"], "total": [None, str(order.total)]}, "api", "203.0.113.10", 28),
        ("api-key-created", OWNER_EMAIL, DEMO_ORG_SLUG, "create", "settings_app.userapikey", ci_key,
         {"name": [None, ci_key.name], "scopes": [None, ci_key.scopes]}, "api", "203.0.113.10", 90),
        ("api-key-used", OWNER_EMAIL, DEMO_ORG_SLUG, "api_key_used", "settings_app.userapikey", ci_key, {},
         "api", "198.51.100.20", 0),
        ("config-changed", ADMIN_EMAIL, None, "update", "settings_app.systemconfig", slack_url,
         {"value": ["***", "***"]}, "admin", "192.0.2.10", 5),
        ("roi-export", demo_admin, DEMO_ORG_SLUG, "export", "analytics.roimetric", ("", "ROI, last 30 days"),
         {"format": "csv"}, "api", "203.0.113.11", 1),
        ("batch-cancelled", demo_admin, DEMO_ORG_SLUG, "action", "operations.taskbatch", cancelled_batch,
         {"action": "cancel", "status": ["running", "cancelled"]}, "api", "203.0.113.11", 6),
        ("acme-login", acme_owner, SECOND_ORG_SLUG, "login", "identity.user", None, {}, "api", "192.0.2.50", 0),
        ("acme-logout", acme_owner, SECOND_ORG_SLUG, "logout", "identity.user", None, {}, "api", "192.0.2.50", 0),
    )  # fmt: skip
    for key, email, org_slug, action, resource_type, resource, changes, source, ip, days_ago in logs:
        user = demo.users[email]
        resource_id, resource_repr = _audit_resource(resource or user)
        AuditLog.objects.get_or_create(
            pk=demo_uuid("audit", key),
            defaults={
                "user": user,
                "organization": demo.orgs[org_slug] if org_slug else None,
                "action": action,
                "resource_type": resource_type,
                "resource_id": resource_id,
                "resource_repr": resource_repr,
                "changes": changes,
                "ip_address": ip,
                "user_agent": _USER_AGENTS[0],
                "source": source,
                "created_at": demo.now - timedelta(days=days_ago, minutes=len(key)),
            },
        )

    events = (
        ("roi-daily", "roi.aggregated", SystemEvent.Severity.INFO, "celery.beat", None, "Daily ROI aggregated", 0),
        (
            "key-unhealthy",
            "ai_key.unhealthy",
            SystemEvent.Severity.WARNING,
            "aimesh",
            None,
            "openai-secondary marked unhealthy after 3 consecutive failures",
            0,
        ),
        (
            "collision",
            "collision.detected",
            SystemEvent.Severity.WARNING,
            "ipcontrol",
            DEMO_ORG_SLUG,
            "Cloned machine on a Demo Corp license",
            2,
        ),
        (
            "collision-resolved",
            "collision.auto_resolved",
            SystemEvent.Severity.INFO,
            "ipcontrol",
            DEMO_ORG_SLUG,
            "Over-limit use stopped; collision closed",
            18,
        ),
        (
            "webhook-disabled",
            "webhook.endpoint_disabled",
            SystemEvent.Severity.ERROR,
            "webhooks",
            SECOND_ORG_SLUG,
            "Maintenance portal disabled after 5 days of failures",
            1,
        ),
        ("license-expired", "license.expired", SystemEvent.Severity.INFO, "licensing", DEMO_ORG_SLUG, "1 license", 12),
        (
            "worker-lost",
            "celery.worker_lost",
            SystemEvent.Severity.CRITICAL,
            "celery",
            None,
            "Worker lost while running a batch; the task was requeued",
            9,
        ),
    )
    for key, event_type, severity, source, org_slug, message, days_ago in events:
        SystemEvent.objects.get_or_create(
            pk=demo_uuid("system-event", key),
            defaults={
                "event_type": event_type,
                "severity": severity,
                "source": source,
                "message": message,
                "organization": demo.orgs[org_slug] if org_slug else None,
                "data": {"demo": True, "key": key},
                "created_at": demo.now - timedelta(days=days_ago, hours=1),
            },
        )


# --------------------------------------------------------------------------------------------
# analytics: telemetry (ROI rows are derived, see _refresh_derived)
# --------------------------------------------------------------------------------------------


def _telemetry_row(
    rng: random.Random, *, pk: uuid.UUID, organization_id: uuid.UUID, user_id: uuid.UUID | None, now: datetime
) -> TelemetryEvent:
    event_type, name, path, device = rng.choice(_TELEMETRY)
    occurred = _spread(rng, now)
    properties: dict[str, object] = {}
    if event_type == "page_view":
        properties = {"duration_ms": rng.randint(300, 45_000)}
    elif event_type == "error":
        properties = {"error": rng.choice(["file_too_large", "unsupported_format"])}
    elif event_type == "app":
        properties = {"version": rng.choice(["1.0.0", "1.1.0"]), "os": rng.choice(["Windows 11", "macOS 14"])}
    return TelemetryEvent(
        id=pk,
        organization_id=organization_id,
        user_id=user_id,
        event_type=event_type,
        event_name=name,
        properties=properties,
        page_url=f"https://app.celaest.local{path}" if path else "",
        device_type=device,
        session_id=f"s_{pk.hex[:16]}",
        occurred_at=occurred,
        created_at=occurred + timedelta(seconds=rng.randint(1, 30)),
    )


def _seed_telemetry(demo: _Demo) -> None:
    rng = random.Random("telemetry")
    for org_slug, count in ((DEMO_ORG_SLUG, 80), (SECOND_ORG_SLUG, 30)):
        org = demo.orgs[org_slug]
        users = [demo.person(org_slug, role) for role in _BENCH_ROLES]

        def build(i: int, pk: uuid.UUID, org=org, users=users) -> TelemetryEvent:
            user = rng.choice(users) if i % 10 else None  # some events come from the desktop app, unauthenticated
            return _telemetry_row(rng, pk=pk, organization_id=org.pk, user_id=user.pk if user else None, now=demo.now)

        _insert_missing(TelemetryEvent, [demo_uuid("telemetry", org_slug, i) for i in range(count)], build)


# --------------------------------------------------------------------------------------------
# Derived rows: ROI days, license usage per month, counters
# --------------------------------------------------------------------------------------------


def _refresh_derived(demo: _Demo, *, organization_ids: Sequence[uuid.UUID]) -> None:
    _refresh_roi_days(organization_ids=organization_ids, since=demo.now - timedelta(days=_HISTORY_DAYS + 1))
    _refresh_usage_logs(organization_ids=organization_ids, since=demo.now - timedelta(days=_HISTORY_DAYS + 1))
    _refresh_license_counters(organization_ids=organization_ids, now=demo.now)
    _refresh_product_stats(product_ids=[product.pk for product in demo.products.values()])
    _refresh_coupon_redemptions(coupon_ids=[demo.coupons["WELCOME10"].pk])
    _refresh_key_usage(key_ids=[key.pk for key in demo.api_keys.values()])


def _refresh_roi_days(*, organization_ids: Sequence[uuid.UUID], since: datetime) -> None:
    """Recompute the ROI rows of the demo's history with the real aggregation job."""
    from analytics.services import roi_aggregate_all

    roi_aggregate_all(date_from=since.date(), date_to=timezone.now().date())


def _refresh_usage_logs(*, organization_ids: Sequence[uuid.UUID], since: datetime) -> None:
    """Upsert each license's usage per calendar month from its processed tasks."""
    months = (
        ProcessedTask.objects.filter(
            organization_id__in=organization_ids,
            license__isnull=False,
            created_at__gte=since.replace(day=1, hour=0, minute=0, second=0, microsecond=0),
        )
        .exclude(status__in=[ProcessedTask.Status.PENDING, ProcessedTask.Status.CANCELLED])
        .annotate(month=TruncMonth("created_at", output_field=models.DateField()))
        .order_by()
        .values("license_id", "organization_id", "month")
        .annotate(
            requests=Count("id"),
            tokens_input=Sum("tokens_input"),
            tokens_output=Sum("tokens_output"),
            tokens_cached=Sum("tokens_cached"),
            cost=Sum("cost_usd"),
        )
    )
    rows = []
    for month in months:
        start, end = _month_bounds(month["month"])
        rows.append(
            LicenseUsageLog(
                organization_id=month["organization_id"],
                license_id=month["license_id"],
                period_start=start,
                period_end=end,
                ai_requests_count=month["requests"],
                tokens_input=month["tokens_input"] or 0,
                tokens_output=month["tokens_output"] or 0,
                tokens_cached=month["tokens_cached"] or 0,
                calculated_cost=month["cost"] or Decimal("0"),
            )
        )
    LicenseUsageLog.objects.bulk_create(
        rows,
        batch_size=_INSERT_BATCH,
        update_conflicts=True,
        unique_fields=["license", "period_start", "period_end"],
        update_fields=[
            "ai_requests_count",
            "tokens_input",
            "tokens_output",
            "tokens_cached",
            "calculated_cost",
            "updated_at",
        ],
    )


def _refresh_license_counters(*, organization_ids: Sequence[uuid.UUID], now: datetime) -> None:
    """``ai_requests_used``: the requests each license made this month."""
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    used = (
        ProcessedTask.objects.filter(license=OuterRef("pk"), created_at__gte=month_start)
        .exclude(status__in=[ProcessedTask.Status.PENDING, ProcessedTask.Status.CANCELLED])
        .order_by()
        .values("license")
        .annotate(n=Count("id"))
        .values("n")
    )
    License.all_objects.filter(organization_id__in=organization_ids).update(
        ai_requests_used=Coalesce(Subquery(used), 0)
    )


def _refresh_product_stats(*, product_ids: Sequence[uuid.UUID]) -> None:
    for product_id in product_ids:
        reviews = ProductReview.objects.filter(product_id=product_id).aggregate(avg=Avg("rating"), n=Count("id"))
        downloads = AssetDownload.objects.filter(release__product_id=product_id).count()
        avg = Decimal(str(reviews["avg"] or 0)).quantize(_CENT, rounding=ROUND_HALF_UP)
        Product.all_objects.filter(pk=product_id).update(
            avg_rating=avg, review_count=reviews["n"], download_count=downloads
        )


def _refresh_key_usage(*, key_ids: Sequence[uuid.UUID]) -> None:
    """What each provider key has served: requests that reached it, and the last one's time."""
    for key_id in key_ids:
        served = ProcessedTask.objects.filter(api_key_id=key_id).exclude(
            status__in=[ProcessedTask.Status.PENDING, ProcessedTask.Status.CANCELLED]
        )
        stats = served.aggregate(n=Count("id"), last=models.Max("created_at"))
        AIApiKey.objects.filter(pk=key_id).update(usage_count=stats["n"], last_used_at=stats["last"])


def _refresh_coupon_redemptions(*, coupon_ids: Sequence[uuid.UUID]) -> None:
    """Coupons without a redemption cap count the paid orders that used them."""
    redeemed = (
        Order.objects.filter(coupon=OuterRef("pk"), status__in=[Order.Status.PAID, Order.Status.REFUNDED])
        .order_by()
        .values("coupon")
        .annotate(n=Count("id"))
        .values("n")
    )
    Coupon.objects.filter(pk__in=coupon_ids, max_redemptions__isnull=True).update(
        times_redeemed=Coalesce(Subquery(redeemed), 0)
    )


# --------------------------------------------------------------------------------------------
# Benchmark volume (--scale)
# --------------------------------------------------------------------------------------------


@dataclass
class _Bench:
    """Benchmark tenants. Everything is indexed so a row's tenant follows from its index alone:
    organization ``n`` owns licenses ``100n..100n+99``, tasks ``1000n..``, and so on."""

    now: datetime
    org_count: int
    org_ids: list[uuid.UUID] = field(default_factory=list)
    org_countries: list[str] = field(default_factory=list)
    org_names: list[str] = field(default_factory=list)
    user_ids: list[dict[str, uuid.UUID]] = field(default_factory=list)  # per org, by role
    license_ids: list[uuid.UUID] = field(default_factory=list)

    def binding_id(self, license_index: int, machine: int) -> uuid.UUID:
        return demo_uuid("bench-binding", license_index, machine)


def _bench_slug(n: int) -> str:
    return f"{BENCH_SLUG_PREFIX}{n + 1:04d}"


def _bench_name(n: int) -> str:
    trade = _BENCH_TRADES[(n // len(_BENCH_NAMES)) % len(_BENCH_TRADES)]
    return f"{_BENCH_NAMES[n % len(_BENCH_NAMES)]} {trade} {n + 1:04d}"


def _bench_license_status(j: int) -> str:
    bucket = (j * 7_919) % 100  # a fixed pseudo-random spread, independent of --scale
    if bucket < 70:
        return License.Status.ACTIVE
    if bucket < 80:
        return License.Status.TRIAL
    if bucket < 85:
        return License.Status.SUSPENDED
    if bucket < 95:
        return License.Status.EXPIRED
    return License.Status.REVOKED


def _seed_bench(demo: _Demo, *, scale: int, stdout: OutputStream | None) -> list[uuid.UUID]:
    """Add ``scale`` units of benchmark volume; return the benchmark organizations' ids."""
    bench = _Bench(now=demo.now, org_count=scale * BENCH_ORGS_PER_SCALE)
    with _section("bench identity", [Organization, User], stdout):
        _bench_identity(bench)
    with _section("bench licensing", [License], stdout):
        _bench_licenses(demo, bench)
    with _section("bench ipcontrol", [LicenseIpBinding, LicenseValidation, LicenseCollision], stdout):
        _bench_ipcontrol(bench)
    with _section("bench operations", [TaskBatch, ProcessedTask], stdout):
        _bench_operations(demo, bench)
    with _section("bench telemetry & audit", [TelemetryEvent, AuditLog, SystemEvent], stdout):
        _bench_events(bench)
    with _section("bench settings", [UserSession, UserApiKey, Webhook, WebhookDelivery], stdout):
        _bench_settings(bench)
    tables = [PaymentMethod, Order, OrderItem, Invoice, CustomerAsset, AssetDownload, ProductReview]
    with _section("bench billing & assets", tables, stdout):
        _bench_commerce(demo, bench)
    return bench.org_ids


def _bench_identity(bench: _Bench) -> None:
    rng = random.Random("bench-orgs")
    slugs = [_bench_slug(n) for n in range(bench.org_count)]
    bench.org_countries = [_BENCH_COUNTRIES[n % len(_BENCH_COUNTRIES)] for n in range(bench.org_count)]
    bench.org_names = [_bench_name(n) for n in range(bench.org_count)]

    def build_org(n: int, pk: uuid.UUID) -> Organization:
        return Organization(
            id=pk,
            name=bench.org_names[n],
            slug=slugs[n],
            email=f"billing@{slugs[n]}.celaest.local",
            settings={
                "currency": "USD",
                "country": bench.org_countries[n],
                "hourly_rate": f"{rng.randint(30, 90)}.00",
                "benchmark": True,
            },
            max_users=10,
            created_at=bench.now - timedelta(days=rng.randint(60, 700)),
        )

    _insert_missing(Organization, [demo_uuid("bench-org", n) for n in range(bench.org_count)], build_org)
    by_slug = dict(Organization.all_objects.filter(slug__in=slugs).values_list("slug", "pk"))
    bench.org_ids = [by_slug[slug] for slug in slugs]

    pairs = [(n, role) for n in range(bench.org_count) for role in _BENCH_ROLES]

    def build_user(i: int, pk: uuid.UUID) -> User:
        n, role = pairs[i]
        return User(
            id=pk,
            organization_id=bench.org_ids[n],
            email=_person_email(slugs[n], role),
            first_name=role.capitalize(),
            last_name=bench.org_names[n].split()[0],
            role=role,
            scopes=_ROLE_SCOPES[role],
            password=_UNUSABLE_PASSWORD,
            created_at=bench.now - timedelta(days=50),
        )

    _insert_missing(User, [demo_uuid("bench-user", n, role) for n, role in pairs], build_user)
    emails = [_person_email(slugs[n], role) for n, role in pairs]
    by_email = dict(User.all_objects.filter(email__in=emails).values_list("email", "pk"))
    bench.user_ids = [
        {role: by_email[_person_email(slugs[n], role)] for role in _BENCH_ROLES} for n in range(bench.org_count)
    ]


def _bench_licenses(demo: _Demo, bench: _Bench) -> None:
    rng = random.Random("bench-licenses")
    plans = [demo.plans[code] for code in ("starter", "pro", "pro", "enterprise")]
    count = bench.org_count * BENCH_LICENSES_PER_ORG
    bench.license_ids = [demo_uuid("bench-license", j) for j in range(count)]

    def build(j: int, pk: uuid.UUID) -> License:
        status = _bench_license_status(j)
        issued = bench.now - timedelta(days=rng.randint(20, 700))
        expires = issued + timedelta(days=365 if status != License.Status.TRIAL else 30)
        if status == License.Status.EXPIRED:
            expires = bench.now - timedelta(days=rng.randint(1, 120))
        elif status in (License.Status.ACTIVE, License.Status.TRIAL) and expires < bench.now:
            expires = bench.now + timedelta(days=rng.randint(5, 360))
        return License(
            id=pk,
            organization_id=bench.org_ids[j // BENCH_LICENSES_PER_ORG],
            plan=plans[j % len(plans)],
            license_key=license_key_generate(),
            status=status,
            status_reason="Chargeback" if status == License.Status.SUSPENDED else "",
            expires_at=expires,
            suspended_at=bench.now - timedelta(days=2) if status == License.Status.SUSPENDED else None,
            revoked_at=bench.now - timedelta(days=9) if status == License.Status.REVOKED else None,
            created_at=issued,
        )

    _backdate_issued_at(_insert_missing(License, bench.license_ids, build))


def _bench_ipcontrol(bench: _Bench) -> None:
    rng = random.Random("bench-ipcontrol")
    machines = [(j, m) for j in range(len(bench.license_ids)) for m in range(2)]

    def build_binding(i: int, pk: uuid.UUID) -> LicenseIpBinding:
        j, m = machines[i]
        first_seen = _spread(rng, bench.now, days=120)
        return LicenseIpBinding(
            id=pk,
            organization_id=bench.org_ids[j // BENCH_LICENSES_PER_ORG],
            license_id=bench.license_ids[j],
            ip_address=f"10.{(j >> 8) & 255}.{j & 255}.{10 + m}",
            machine_id=_fingerprint("bench-machine", j, m),
            hostname=f"ws-{j:06d}-{m}",
            is_active=m == 0 or j % 4 != 0,
            first_seen=first_seen,
            activated_at=first_seen,
            last_seen=_spread(rng, bench.now, days=3),
            created_at=first_seen,
        )

    _insert_missing(LicenseIpBinding, [bench.binding_id(j, m) for j, m in machines], build_binding)

    count = len(bench.license_ids) * BENCH_VALIDATIONS_PER_LICENSE

    def build_validation(i: int, pk: uuid.UUID) -> LicenseValidation:
        j = i // BENCH_VALIDATIONS_PER_LICENSE
        m = i % 2
        if i % 33 == 0:  # a key nobody issued
            return LicenseValidation(
                id=pk,
                ip_address=f"198.51.100.{i % 250}",
                machine_id=_fingerprint("bench-unknown", i),
                hostname="unknown",
                result_code="NOT_FOUND",
                failure_reason="No license with this key",
                created_at=_spread(rng, bench.now),
            )
        status = _bench_license_status(j)
        valid = status in (License.Status.ACTIVE, License.Status.TRIAL)
        return LicenseValidation(
            id=pk,
            license_id=bench.license_ids[j],
            organization_id=bench.org_ids[j // BENCH_LICENSES_PER_ORG],
            ip_binding_id=bench.binding_id(j, m),
            ip_address=f"10.{(j >> 8) & 255}.{j & 255}.{10 + m}",
            machine_id=_fingerprint("bench-machine", j, m),
            hostname=f"ws-{j:06d}-{m}",
            is_valid=valid,
            result_code="VALID" if valid else str(status).upper(),
            failure_reason="" if valid else f"License is {status}",
            created_at=_spread(rng, bench.now),
        )

    _insert_missing(LicenseValidation, [demo_uuid("bench-validation", i) for i in range(count)], build_validation)

    collision_count = len(bench.license_ids) // 50

    def build_collision(c: int, pk: uuid.UUID) -> LicenseCollision:
        j = c * 50
        resolved = bench.now - timedelta(days=rng.randint(1, 20)) if c % 3 == 0 else None
        detected = (resolved or bench.now) - timedelta(hours=rng.randint(2, 72))
        return LicenseCollision(
            id=pk,
            organization_id=bench.org_ids[j // BENCH_LICENSES_PER_ORG],
            license_id=bench.license_ids[j],
            ip_binding_a_id=bench.binding_id(j, 0),
            ip_binding_b_id=bench.binding_id(j, 1),
            collision_type=LicenseCollision.CollisionType.OVER_LIMIT,
            severity=rng.choice(list(LicenseCollision.Severity.values)),
            details={"max_machines": 1, "active_machines": 2},
            detected_at=detected,
            last_seen_at=resolved or bench.now - timedelta(minutes=rng.randint(1, 90)),
            resolved_at=resolved,
            auto_resolved=resolved is not None,
            created_at=detected,
        )

    _insert_missing(
        LicenseCollision, [demo_uuid("bench-collision", c) for c in range(collision_count)], build_collision
    )


def _bench_operations(demo: _Demo, bench: _Bench) -> None:
    rng = random.Random("bench-operations")
    router = _Router.from_demo(demo)
    prompts = [demo.active_prompt(slug) for slug in _PROMPT_SLUGS]
    count = bench.org_count * BENCH_TASKS_PER_ORG
    batched = count // 10  # tasks [0, batched) run in batches of BENCH_BATCH_SIZE
    batch_count = batched // BENCH_BATCH_SIZE

    def batch_task_status(i: int) -> str:
        b, position = divmod(i, BENCH_BATCH_SIZE)
        failed = b % 3 == 0 and position == BENCH_BATCH_SIZE - 1
        return ProcessedTask.Status.FAILED if failed else ProcessedTask.Status.COMPLETED

    def build_batch(b: int, pk: uuid.UUID) -> TaskBatch:
        n = (b * BENCH_BATCH_SIZE) // BENCH_TASKS_PER_ORG
        failed = sum(
            batch_task_status(i) == ProcessedTask.Status.FAILED
            for i in range(b * BENCH_BATCH_SIZE, (b + 1) * BENCH_BATCH_SIZE)
        )
        created = _spread(rng, bench.now)
        prompt = prompts[b % len(prompts)]
        return TaskBatch(
            id=pk,
            organization_id=bench.org_ids[n],
            user_id=bench.user_ids[n]["admin"],
            license_id=bench.license_ids[n * BENCH_LICENSES_PER_ORG],
            prompt=prompt,
            model=router.models_by_prompt[prompt.pk],
            name=f"Nightly run #{b + 1}",
            status=TaskBatch.Status.PARTIALLY_FAILED if failed else TaskBatch.Status.COMPLETED,
            total_tasks=BENCH_BATCH_SIZE,
            completed_tasks=BENCH_BATCH_SIZE - failed,
            failed_tasks=failed,
            started_at=created,
            finished_at=created + timedelta(minutes=BENCH_BATCH_SIZE),
            created_at=created,
        )

    batch_ids = [demo_uuid("bench-batch", b) for b in range(batch_count)]
    _insert_missing(TaskBatch, batch_ids, build_batch)
    batch_meta = dict(
        TaskBatch.objects.filter(pk__in=batch_ids).values_list("pk", "created_at")
    )  # batched tasks start when their batch did

    def build_task(i: int, pk: uuid.UUID) -> ProcessedTask:
        n = i // BENCH_TASKS_PER_ORG
        users = bench.user_ids[n]
        license_index = n * BENCH_LICENSES_PER_ORG + (i % BENCH_LICENSES_PER_ORG)
        if i < batched:
            b, position = divmod(i, BENCH_BATCH_SIZE)
            return _task_row(
                rng=rng,
                router=router,
                pk=pk,
                organization_id=bench.org_ids[n],
                user_id=users["admin"],
                license_id=bench.license_ids[n * BENCH_LICENSES_PER_ORG],
                prompt=prompts[b % len(prompts)],
                status=batch_task_status(i),
                created_at=batch_meta[batch_ids[b]] + timedelta(seconds=position * 3),
                batch_id=batch_ids[b],
                batch_index=position,
            )
        return _task_row(
            rng=rng,
            router=router,
            pk=pk,
            organization_id=bench.org_ids[n],
            user_id=users[rng.choice(("owner", "admin", "member"))],
            license_id=bench.license_ids[license_index],
            prompt=rng.choice(prompts),
            status=ProcessedTask.Status.FAILED if rng.random() < 0.05 else ProcessedTask.Status.COMPLETED,
            created_at=_spread(rng, bench.now),
        )

    _insert_missing(ProcessedTask, [demo_uuid("bench-task", i) for i in range(count)], build_task)


def _bench_events(bench: _Bench) -> None:
    rng = random.Random("bench-events")
    telemetry_count = bench.org_count * BENCH_TELEMETRY_PER_ORG

    def build_telemetry(i: int, pk: uuid.UUID) -> TelemetryEvent:
        n = i // BENCH_TELEMETRY_PER_ORG
        user_id = bench.user_ids[n][_BENCH_ROLES[i % len(_BENCH_ROLES)]] if i % 10 else None
        return _telemetry_row(rng, pk=pk, organization_id=bench.org_ids[n], user_id=user_id, now=bench.now)

    _insert_missing(TelemetryEvent, [demo_uuid("bench-telemetry", i) for i in range(telemetry_count)], build_telemetry)

    audit_count = bench.org_count * BENCH_AUDIT_PER_ORG
    actions = (
        ("login", "identity.user", {}),
        ("create", "operations.taskbatch", {"status": [None, "pending"]}),
        ("update", "licensing.license", {"notes": ["", "Renewed by phone"]}),
        ("api_key_used", "settings_app.userapikey", {}),
        ("logout", "identity.user", {}),
    )

    def build_audit(i: int, pk: uuid.UUID) -> AuditLog:
        n = i // BENCH_AUDIT_PER_ORG
        action, resource_type, changes = actions[i % len(actions)]
        user_id = bench.user_ids[n][_BENCH_ROLES[i % 3]]
        resource_id = user_id if resource_type == "identity.user" else demo_uuid("bench-resource", i)
        return AuditLog(
            id=pk,
            user_id=user_id,
            organization_id=bench.org_ids[n],
            action=action,
            resource_type=resource_type,
            resource_id=str(resource_id),
            changes=changes,
            ip_address=f"10.{n % 256}.{i % 256}.{1 + i % 200}",
            user_agent=_USER_AGENTS[i % len(_USER_AGENTS)],
            source="api",
            created_at=_spread(rng, bench.now),
        )

    _insert_missing(AuditLog, [demo_uuid("bench-audit", i) for i in range(audit_count)], build_audit)

    event_count = bench.org_count * 10

    def build_event(i: int, pk: uuid.UUID) -> SystemEvent:
        n = i // 10
        kind = i % 3
        return SystemEvent(
            id=pk,
            event_type=("roi.aggregated", "license.expired", "collision.detected")[kind],
            severity=(SystemEvent.Severity.INFO, SystemEvent.Severity.INFO, SystemEvent.Severity.WARNING)[kind],
            source=("celery.beat", "licensing", "ipcontrol")[kind],
            message=f"{bench.org_names[n]}: {('ROI aggregated', 'license expired', 'collision detected')[kind]}",
            organization_id=bench.org_ids[n],
            data={"benchmark": True},
            created_at=_spread(rng, bench.now),
        )

    _insert_missing(SystemEvent, [demo_uuid("bench-system-event", i) for i in range(event_count)], build_event)


def _bench_settings(bench: _Bench) -> None:
    rng = random.Random("bench-settings")
    users = [(n, role) for n in range(bench.org_count) for role in _BENCH_ROLES]

    def build_session(i: int, pk: uuid.UUID) -> UserSession:
        n, role = users[i]
        last = _spread(rng, bench.now, days=7)
        return UserSession(
            id=pk,
            user_id=bench.user_ids[n][role],
            session_token=_session_token(),
            ip_address=f"10.{n % 256}.0.{1 + i % 250}",
            user_agent=_USER_AGENTS[i % len(_USER_AGENTS)],
            device_info=_DEVICES[i % len(_DEVICES)],
            is_active=last > bench.now - timedelta(days=5),
            last_activity_at=last,
            expires_at=last + timedelta(days=14),
            created_at=last - timedelta(hours=2),
        )

    _insert_missing(UserSession, [demo_uuid("bench-session", n, role) for n, role in users], build_session)

    def build_key(n: int, pk: uuid.UUID) -> UserApiKey:
        return UserApiKey(
            id=pk,
            user_id=bench.user_ids[n]["owner"],
            name="Automation",
            **_user_api_key_fields(),
            scopes=["tasks:run", "licenses:read"],
            usage_count=rng.randint(0, 50_000),
            created_at=bench.now - timedelta(days=40),
        )

    _insert_missing(UserApiKey, [demo_uuid("bench-api-key", n) for n in range(bench.org_count)], build_key)

    webhook_ids = [demo_uuid("bench-webhook", n) for n in range(bench.org_count)]

    def build_webhook(n: int, pk: uuid.UUID) -> Webhook:
        return Webhook(
            id=pk,
            organization_id=bench.org_ids[n],
            user_id=bench.user_ids[n]["owner"],
            name=BENCH_WEBHOOK_NAME,
            url=f"https://erp.{_bench_slug(n)}.example.com/hooks/celaest",
            **_webhook_secret_fields(),
            status=Webhook.Status.PAUSED,  # example endpoints: the benchmark must call nothing outside
            events=["task.completed", "batch.completed", "license.suspended"],
            created_at=bench.now - timedelta(days=40),
        )

    _insert_missing(Webhook, webhook_ids, build_webhook)
    pairs = [(n, k) for n in range(bench.org_count) for k in range(BENCH_DELIVERIES_PER_WEBHOOK)]

    def build_delivery(i: int, pk: uuid.UUID) -> WebhookDelivery:
        n, k = pairs[i]
        created = _spread(rng, bench.now)
        ok = k % 10 != 0
        return WebhookDelivery(
            id=pk,
            webhook_id=webhook_ids[n],
            organization_id=bench.org_ids[n],
            event_id=f"msg_{demo_uuid('bench-event', n, k).hex}",
            event_type="task.completed",
            payload={"type": "task.completed", "timestamp": created.isoformat(), "data": {"n": k}},
            status=WebhookDelivery.Status.SUCCEEDED if ok else WebhookDelivery.Status.FAILED,
            response_status=200 if ok else 500,
            error="" if ok else "HTTP 500",
            duration_ms=rng.randint(40, 900),
            delivered_at=created if ok else None,
            created_at=created,
        )

    _insert_missing(WebhookDelivery, [demo_uuid("bench-delivery", n, k) for n, k in pairs], build_delivery)


def _bench_commerce(demo: _Demo, bench: _Bench) -> None:
    rng = random.Random("bench-commerce")
    stripe, manual = demo.gateways["stripe"], demo.gateways["manual"]

    def build_method(n: int, pk: uuid.UUID) -> PaymentMethod:
        return PaymentMethod(
            id=pk,
            organization_id=bench.org_ids[n],
            user_id=bench.user_ids[n]["owner"],
            gateway=stripe,
            type=PaymentMethod.Type.CARD,
            card_brand=rng.choice([PaymentMethod.CardBrand.VISA, PaymentMethod.CardBrand.MASTERCARD]),
            card_last4=f"{rng.randint(0, 9999):04d}",
            exp_month=rng.randint(1, 12),
            exp_year=bench.now.year + rng.randint(1, 4),
            gateway_token=f"pm_{pk.hex[:24]}",
            is_default=not PaymentMethod.objects.filter(user_id=bench.user_ids[n]["owner"], is_default=True).exists(),
        )

    _insert_missing(PaymentMethod, [demo_uuid("bench-payment-method", n) for n in range(bench.org_count)], build_method)

    products = [demo.products[slug] for slug in _PUBLISHED_PRODUCTS]
    orgs = {org.pk: org for org in Organization.all_objects.filter(pk__in=bench.org_ids)}
    published = {
        product.pk: [r for (slug, _), r in demo.releases.items() if slug == product.slug and r.status == "published"]
        for product in products
    }
    order_ids = [demo_uuid("bench-order", i) for i in range(bench.org_count * BENCH_ORDERS_PER_ORG)]
    statuses = [Order.Status.PAID] * 15 + [Order.Status.PENDING] * 2 + [Order.Status.CANCELLED] * 2
    statuses += [Order.Status.REFUNDED]
    for positions in _missing_chunks(Order, order_ids):
        orders, items, invoices, assets, downloads = [], [], [], [], []
        # Numbers follow time within each chunk, as the billing service would have handed them out.
        dated = sorted((_spread(rng, bench.now, days=180), i) for i in positions)
        for created_at, i in dated:
            n = i // BENCH_ORDERS_PER_ORG
            org = orgs[bench.org_ids[n]]
            owner_id = bench.user_ids[n]["owner"]
            lines = [(product, rng.randint(1, 3)) for product in rng.sample(products, rng.randint(1, 2))]
            status = statuses[i % len(statuses)]
            order, order_items, invoice = _build_order(
                demo,
                pk=order_ids[i],
                organization=org,
                user_id=owner_id,
                user_name=f"Owner {org.name}",
                gateway=stripe if i % 3 else manual,
                status=status,
                lines=lines,
                coupon=demo.coupons["WELCOME10"] if i % 5 == 0 else None,
                tax_rate=demo.tax_rates[_TAX_BY_COUNTRY[bench.org_countries[n]]],
                created_at=created_at,
            )
            orders.append(order)
            items += order_items
            if invoice is not None:
                invoices.append(invoice)
            if status == Order.Status.PAID:
                product = lines[0][0]
                asset = CustomerAsset(
                    id=demo_uuid("bench-asset", i),
                    organization_id=org.pk,
                    product=product,
                    user_id=owner_id,
                    license_id=bench.license_ids[n * BENCH_LICENSES_PER_ORG] if product.plan_id else None,
                    order=order,
                    granted_at=order.paid_at,
                    created_at=order.paid_at,
                )
                assets.append(asset)
                for k, release in enumerate(published[product.pk]):
                    downloads.append(
                        AssetDownload(
                            id=demo_uuid("bench-download", i, k),
                            asset=asset,
                            release=release,
                            user_id=owner_id,
                            ip_address=f"10.{n % 256}.1.{1 + k}",
                            user_agent=_USER_AGENTS[3],
                            created_at=order.paid_at + timedelta(hours=1 + k),
                        )
                    )
        Order.objects.bulk_create(orders, batch_size=_INSERT_BATCH)
        OrderItem.objects.bulk_create(items, batch_size=_INSERT_BATCH, ignore_conflicts=True)
        Invoice.objects.bulk_create(invoices, batch_size=_INSERT_BATCH, ignore_conflicts=True)
        CustomerAsset.objects.bulk_create(assets, batch_size=_INSERT_BATCH, ignore_conflicts=True)
        AssetDownload.objects.bulk_create(downloads, batch_size=_INSERT_BATCH, ignore_conflicts=True)

    reviews = [
        (n, role, slug)
        for n in range(bench.org_count)
        for role in ("owner", "admin")
        for slug in _PUBLISHED_PRODUCTS[:2]
    ]

    def build_review(i: int, pk: uuid.UUID) -> ProductReview:
        n, role, slug = reviews[i]
        rating = rng.choice([5, 5, 4, 4, 4, 3, 2, 1])
        return ProductReview(
            id=pk,
            product=demo.products[slug],
            user_id=bench.user_ids[n][role],
            rating=rating,
            title=("Does the job", "Great value", "Needs work", "Excellent support")[rating % 4],
            comment="Benchmark review.",
            is_verified=role == "owner",
            created_at=_spread(rng, bench.now, days=90),
        )

    _insert_missing(
        ProductReview, [demo_uuid("bench-review", n, role, slug) for n, role, slug in reviews], build_review
    )
