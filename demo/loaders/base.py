"""Shared by the demo loaders: fixed names and logins, the credentials file, deterministic ids,
idempotent bulk inserts and the state of one run (``DemoRun``).
"""

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
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from django.conf import settings
from django.contrib.auth import password_validation
from django.contrib.auth.hashers import make_password
from django.core.exceptions import ValidationError
from django.db import connections, models, transaction
from django.db.models import F

from aimesh.models import AIApiKey, AIModel, Prompt
from billing.models import (
    Coupon,
    Invoice,
    Order,
    PaymentGateway,
    TaxRate,
)
from identity.models import Organization, User
from ipcontrol.models import LicenseIpBinding
from licensing.models import License, SubscriptionPlan
from marketplace.models import (
    Product,
    ProductCategory,
    ProductRelease,
)
from settings_app.models import Webhook

ADMIN_EMAIL = "admin@celaest.local"
OWNER_EMAIL = "owner@demo.celaest.local"
DEMO_ORG_SLUG = "demo"
SECOND_ORG_SLUG = "acme"


CREDENTIALS_FILENAME = "demo-credentials.json"
ADMIN_PASSWORD_ENV = "DEMO_ADMIN_PASSWORD"  # noqa: S105 - the name of a variable, not a password
OWNER_PASSWORD_ENV = "DEMO_OWNER_PASSWORD"  # noqa: S105 - the name of a variable, not a password


# The demo calls nothing outside the machine. Releases point at a file the platform serves itself
# (a path: the redirect works on whatever host and port it runs); webhooks are paused or disabled
# at example URLs (RFC 2606 ``.example``, which never resolves) until someone points them at a
# receiver of theirs.
DEMO_RELEASE_FILE = "marketplace/demo-release.txt"
BENCH_WEBHOOK_NAME = "Events to ERP"


_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_DNS, "demo.celaest.local")
INSERT_BATCH = 1_000  # rows per INSERT statement
_EXISTS_CHUNK = 2_000  # ids per "which of these exist already" query
_COPY_THRESHOLD = 500  # rows from which PostgreSQL inserts go through COPY
HISTORY_DAYS = 30


UNUSABLE_PASSWORD = make_password(None)  # demo personas other than the two printed logins cannot log in


class OutputStream(Protocol):
    """Where progress goes: ``sys.stdout``, a command's ``self.stdout``, a ``StringIO``."""

    def write(self, msg: str, /) -> object: ...


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


def demo_uuid(*parts: object) -> uuid.UUID:
    """The fixed id of a demo row that has no natural key, e.g. ``demo_uuid("license", "demo", "primary")``."""
    return uuid.uuid5(_NAMESPACE, ":".join(str(part) for part in parts))


def fingerprint(*parts: object) -> str:
    return hashlib.sha256(":".join(str(p) for p in parts).encode()).hexdigest()[:32]


def moment_in_history(rng: random.Random, now: datetime, *, days: int = HISTORY_DAYS) -> datetime:
    """A moment in the last ``days`` days."""
    return now - timedelta(seconds=rng.randint(60, days * 86_400))


def _needs_db_prep(field: models.Field) -> bool:
    return (
        isinstance(field, models.JSONField)
        or getattr(field, "auto_now", False)
        or getattr(field, "auto_now_add", False)
    )


def missing_chunks(model: type[models.Model], ids: Sequence[uuid.UUID]) -> Iterator[list[int]]:
    """Positions in ``ids`` whose rows do not exist yet, one list per chunk of ids."""
    manager = model._base_manager
    for start in range(0, len(ids), _EXISTS_CHUNK):
        chunk = ids[start : start + _EXISTS_CHUNK]
        existing = set(manager.filter(pk__in=chunk).values_list("pk", flat=True))
        missing = [start + offset for offset, pk in enumerate(chunk) if pk not in existing]
        if missing:
            yield missing


def insert_missing(
    model: type[models.Model], ids: Sequence[uuid.UUID], build: Callable[[int, uuid.UUID], models.Model]
) -> list[uuid.UUID]:
    """Insert ``build(i, ids[i])`` for every id not in the table yet; return the ids inserted."""
    inserted: list[uuid.UUID] = []
    for positions in missing_chunks(model, ids):
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
        model._base_manager.bulk_create(rows, batch_size=INSERT_BATCH, ignore_conflicts=True)
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


def backdate_issued_at(license_ids: Sequence[uuid.UUID]) -> None:
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
def section(label: str, tables: Sequence[type[models.Model]], stdout: OutputStream | None) -> Iterator[None]:
    """Run one module's seeding in its own transaction and report how many rows it added."""
    before = sum(model._base_manager.count() for model in tables)
    started = time.monotonic()
    with transaction.atomic():
        yield
    if stdout is not None:
        added = sum(model._base_manager.count() for model in tables) - before
        stdout.write(f"  {label:<24} +{added:>7} rows  ({time.monotonic() - started:.1f}s)\n")


USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "CELAEST-Desktop/1.1.0 (Windows 11; x64)",
)


BENCH_ROLES = ("owner", "admin", "member", "viewer")


def person_email(org_slug: str, role: str) -> str:
    return f"{role}@{org_slug}.celaest.local"


@dataclass
class DemoRun:
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
        return self.users[person_email(org_slug, role)]

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
