"""Reads for IP control: bindings, validation attempts and collisions, with what their API
representation needs joined in, and the detection thresholds from system config."""

import json
import time
import uuid
from dataclasses import dataclass, fields
from datetime import UTC, datetime

from django.db import connection
from django.db.models import QuerySet
from django.utils.dateparse import parse_datetime

from licensing.services import license_key_normalize
from settings_app.runtime import system_config_get

from .models import LicenseCollision, LicenseIpBinding, LicenseValidation
from .snapshots import (
    Found,
    LicenseFacts,
    LicenseSnapshot,
    Seat,
    plan_facts,
    snapshot_answers,
    snapshot_store,
    snapshot_token,
)

CONFIG_PREFIX = "ipcontrol."


@dataclass(frozen=True)
class IpControlConfig:
    """Thresholds of IP control, each read from ``system_config`` key ``ipcontrol.<name>``."""

    #: window in which more machines/IPs than max_machines count as over-limit use
    collision_window_minutes: int = 15
    #: window in which one fingerprint alternating between IPs counts as a cloned machine
    clone_window_minutes: int = 10
    #: IP switches of one fingerprint within the clone window that make it a clone (A→B→A = 2)
    clone_min_switches: int = 2
    #: window and number of deactivations after which a new activation is churn
    churn_window_minutes: int = 60
    churn_threshold: int = 3
    #: an open collision not seen again for this long is resolved automatically
    collision_quiet_minutes: int = 60
    #: machines not seen for this long are deactivated (their seat is freed)
    binding_stale_hours: int = 720
    #: lifetime of an offline certificate, capped by the license's own expiry
    certificate_ttl_hours: int = 168
    #: how long past its lease a machine keeps its seat before the lease job releases it
    heartbeat_grace_seconds: int = 60
    #: validation attempts older than this are deleted by the retention job
    validation_retention_days: int = 400


def ipcontrol_config() -> IpControlConfig:
    """The thresholds, with defaults for keys missing from system config or not a positive
    integer. Read through the process copy of system config: no query on the validation path."""
    values = {}
    for field in fields(IpControlConfig):
        value = system_config_get(CONFIG_PREFIX + field.name, field.default, int)
        values[field.name] = value if value > 0 else field.default
    return IpControlConfig(**values)


def license_ip_binding_list() -> QuerySet[LicenseIpBinding]:
    return LicenseIpBinding.objects.all()


def license_validation_list() -> QuerySet[LicenseValidation]:
    return LicenseValidation.objects.all()


def license_collision_list() -> QuerySet[LicenseCollision]:
    return LicenseCollision.objects.select_related("ip_binding_a", "ip_binding_b")


def _json(value):
    return json.loads(value) if isinstance(value, str | bytes) else value


def _datetime(value) -> datetime | None:
    """PostgreSQL hands back aware datetimes; SQLite naive ones (or text), in UTC."""
    if value is None:
        return None
    parsed = value if isinstance(value, datetime) else parse_datetime(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _bool(value) -> bool:
    return bool(value)


def _id(value) -> str:
    """An id as text, in its canonical form (SQLite stores UUIDs as 32 hex digits)."""
    return str(value if isinstance(value, uuid.UUID) else uuid.UUID(str(value)))


_LOOKUP_SQL = """
SELECT l.id, l.organization_id, l.plan_id, l.license_key, l.status, l.expires_at, l.custom_limits,
       p.code, p.limits, p.features, p.machine_scheme, p.overage_allowance, p.heartbeat_window_seconds,
       l.machine_scheme, l.overage_allowance, l.heartbeat_window_seconds, l.entitlements, l.billing_state,
       b.id, b.machine_id, b.is_active, b.activated_at
FROM licenses l
JOIN subscription_plans p ON p.id = l.plan_id
LEFT JOIN license_ip_bindings b ON b.license_id = l.id AND (b.is_active = %s OR b.machine_id = %s)
WHERE l.license_key = %s AND l.deleted_at IS NULL
"""


def _fetch_all(sql: str, params: list) -> list[tuple]:
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()
    # Planning this join costs ten times running it: a server-side prepared statement, planned
    # once per connection (Django's own cursors bind parameters client-side and cannot prepare).
    import psycopg

    connection.ensure_connection()
    started = time.monotonic()
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, params, prepare=True)
        rows = cursor.fetchall()
    if connection.queries_logged:  # seen by assertNumQueries and the debug toolbar like any query
        connection.queries_log.append({"sql": f"{sql} -- {params!r}", "time": f"{time.monotonic() - started:.3f}"})
    return rows


def license_seats_lookup(*, key: str, fingerprint: str, snapshot: LicenseSnapshot | None = None) -> Found:
    """The live license with this key (its plan loaded) and its active machines plus the one named
    ``fingerprint`` — the hot path of every validation. From ``snapshot`` (the Redis copy) when it
    is current and either names the machine among the active ones or no machine is asked about;
    otherwise in one database round trip, refreshing the copy when it was missing."""
    normalized = license_key_normalize(key)
    if not normalized:
        return None
    if snapshot is not None and snapshot.hit:
        if snapshot_answers(snapshot.found, fingerprint):
            return snapshot.found
        snapshot = None  # a machine without an active seat: its inactive binding is in the database
    token = snapshot_token(snapshot) if snapshot is not None else None
    found = _lookup(normalized, fingerprint)
    if token is not None:
        snapshot_store(snapshot, token, found)
    return found


def _lookup(normalized: str, fingerprint: str) -> Found:
    rows = _fetch_all(_LOOKUP_SQL, [True, fingerprint, normalized])
    if not rows:
        return None
    first = rows[0]
    plan_id = _id(first[2])
    license = LicenseFacts(
        pk=_id(first[0]),
        organization_id=_id(first[1]),
        plan_id=plan_id,
        license_key=first[3],
        status=first[4],
        expires_at=_datetime(first[5]),
        custom_limits=_json(first[6]),
        plan=plan_facts(plan_id, first[7], _json(first[8]), _json(first[9]), first[10], first[11], first[12]),
        machine_scheme=first[13],
        overage_allowance=first[14],
        heartbeat_window_seconds=first[15],
        entitlements=tuple(_json(first[16]) or ()),
        billing_state=first[17],
    )
    seats = tuple(
        Seat(pk=_id(row[18]), machine_id=row[19], is_active=_bool(row[20]), activated_at=_datetime(row[21]))
        for row in rows
        if row[18] is not None
    )
    return license, seats
