"""Collision detection: anomalous simultaneous use of a license.

Three kinds, each with a severity:

- ``over_limit``: more distinct machines (fingerprints) or IPs in valid use within the sliding
  window than ``max_machines`` allows — medium when over, high at twice, critical at four times.
- ``cloned_machine``: one fingerprint alternating between IPs within the clone window (A→B→A:
  one machine image running in two places; a single move to a new IP is not a clone) — high for
  two IPs, critical for more.
- ``activation_churn``: a machine activated after ``churn_threshold`` deactivations of the
  license within the churn window (seat passing) — low, medium at twice, high at four times.

Detection runs when validation rows are flushed (over-limit, clones) and inside the activation
transaction (churn). It takes the license row lock, so at most one collision of a kind is open
per license (per machine for clones); a repeat sighting refreshes ``last_seen_at`` and may raise
the severity. A new collision records a system event and emits ``license.collision_detected``;
collisions quiet for ``collision_quiet_minutes`` are resolved automatically.
"""

import logging
import time
from datetime import datetime, timedelta
from functools import lru_cache

import redis
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from audit.models import AuditLog, SystemEvent
from audit.services import audit_record, system_event_record
from celaest.errors import Conflict
from celaest.redis import cache_key, redis_cache_client
from identity.models import User
from licensing.models import License
from licensing.selectors import license_effective_limits
from settings_app.events import emit_event

from .models import LicenseCollision, LicenseIpBinding, LicenseValidation
from .selectors import IpControlConfig, ipcontrol_config

logger = logging.getLogger(__name__)

Type = LicenseCollision.CollisionType
Severity = LicenseCollision.Severity
_RANK = {Severity.LOW: 0, Severity.MEDIUM: 1, Severity.HIGH: 2, Severity.CRITICAL: 3}
_SYSTEM_SEVERITY = {
    Severity.LOW: SystemEvent.Severity.INFO,
    Severity.MEDIUM: SystemEvent.Severity.WARNING,
    Severity.HIGH: SystemEvent.Severity.ERROR,
    Severity.CRITICAL: SystemEvent.Severity.CRITICAL,
}


def over_limit_severity(*, used: int, allowed: int) -> str:
    allowed = max(allowed, 1)
    if used >= 4 * allowed:
        return Severity.CRITICAL
    if used >= 2 * allowed:
        return Severity.HIGH
    return Severity.MEDIUM


def clone_severity(*, ip_count: int) -> str:
    return Severity.CRITICAL if ip_count >= 3 else Severity.HIGH


def churn_severity(*, deactivations: int, threshold: int) -> str:
    if deactivations >= 4 * threshold:
        return Severity.HIGH
    if deactivations >= 2 * threshold:
        return Severity.MEDIUM
    return Severity.LOW


def collision_event_data(collision: LicenseCollision) -> dict:
    return {
        "id": str(collision.pk),
        "license": str(collision.license_id),
        "collision_type": collision.collision_type,
        "severity": collision.severity,
        "ip_binding_a": str(collision.ip_binding_a_id),
        "ip_binding_b": str(collision.ip_binding_b_id) if collision.ip_binding_b_id else None,
        "details": collision.details,
        "detected_at": collision.detected_at.isoformat(),
        "resolved_at": collision.resolved_at.isoformat() if collision.resolved_at else None,
        "auto_resolved": collision.auto_resolved,
    }


def collision_report(
    *,
    license: License,
    collision_type: str,
    severity: str,
    binding_a: LicenseIpBinding,
    binding_b: LicenseIpBinding | None,
    details: dict,
    now: datetime,
) -> tuple[LicenseCollision, bool]:
    """Open a collision, or refresh the open one of its kind. The caller holds the license row
    lock. Returns the collision and whether it is new."""
    open_ = LicenseCollision.objects.filter(license=license, collision_type=collision_type, resolved_at__isnull=True)
    if collision_type == Type.CLONED_MACHINE:
        open_ = open_.filter(ip_binding_a=binding_a)
    existing = open_.order_by("detected_at").first()
    if existing is not None:
        existing.last_seen_at = now
        existing.details = details
        if _RANK[severity] > _RANK[existing.severity]:
            existing.severity = severity
        existing.save(update_fields=["last_seen_at", "details", "severity", "updated_at"])
        return existing, False
    collision = LicenseCollision.objects.create(
        organization_id=license.organization_id,
        license=license,
        ip_binding_a=binding_a,
        ip_binding_b=binding_b,
        collision_type=collision_type,
        severity=severity,
        details=details,
        detected_at=now,
        last_seen_at=now,
    )
    system_event_record(
        event_type="license.collision_detected",
        severity=_SYSTEM_SEVERITY[severity],
        message=f"{collision.get_collision_type_display()} on license {license.pk} ({severity})",
        source="ipcontrol",
        organization=license.organization,
        data=collision_event_data(collision),
    )
    emit_event("license.collision_detected", organization=license.organization, payload=collision_event_data(collision))
    return collision, True


# KEYS: per license, the sorted sets of its machines and of its IPs (scored by when last seen).
# ARGV: the oldest score kept, the sets' time to live, then per license its number of attempts
# followed by (score, machine, ip) for each. Returns per license 1 when it has two machines or two
# IPs in the window (a candidate for detection), else 0.
_SEEN_LUA = """
local cutoff, ttl, at, out = ARGV[1], ARGV[2], 3, {}
for k = 1, #KEYS, 2 do
  local machines, ips, count = KEYS[k], KEYS[k + 1], tonumber(ARGV[at])
  at = at + 1
  for _ = 1, count do
    redis.call('ZADD', machines, 'GT', ARGV[at], ARGV[at + 1])
    if ARGV[at + 2] ~= '' then redis.call('ZADD', ips, 'GT', ARGV[at], ARGV[at + 2]) end
    at = at + 3
  end
  redis.call('ZREMRANGEBYSCORE', machines, '-inf', '(' .. cutoff)
  redis.call('ZREMRANGEBYSCORE', ips, '-inf', '(' .. cutoff)
  redis.call('EXPIRE', machines, ttl)
  redis.call('EXPIRE', ips, ttl)
  local busy = redis.call('ZCARD', machines) > 1 or redis.call('ZCARD', ips) > 1
  out[#out + 1] = busy and 1 or 0
end
return out
"""


#: attempts per call of the script. A script holds Redis alone while it runs, and every validation
#: waits on Redis (rate limits, the buffer), so a flush's thousand attempts go in calls of ~0.5 ms
#: each, pipelined, rather than in one call of 10-20 ms that stalls every server process at once.
SEEN_BATCH = 16


@lru_cache(maxsize=1)
def _seen_script():
    return redis_cache_client().register_script(_SEEN_LUA)


def collision_candidates(rows: list[dict], *, config: IpControlConfig | None = None) -> set[str]:
    """The licenses among the valid attempt ``rows`` that may be in a collision: seen on two
    machines or from two IPs within the detection windows. Each license's machines and IPs are
    kept in Redis as the rows go by, so a flush runs the database detection only for those, not
    for every license that was used (the common case: one machine, one address). Without Redis,
    every license used is a candidate."""
    valid = [row for row in rows if row["license_id"] and row["is_valid"]]
    client = redis_cache_client()
    if client is None or not valid:
        return {row["license_id"] for row in valid}
    config = config or ipcontrol_config()
    window = 60 * max(config.collision_window_minutes, config.clone_window_minutes)
    by_license: dict[str, list[dict]] = {}
    for row in valid:
        by_license.setdefault(row["license_id"], []).append(row)
    head = [time.time() - window, window + 60]
    script, pipeline = _seen_script(), client.pipeline(transaction=False)
    for chunk in _chunks(by_license, SEEN_BATCH):
        keys, args = [], list(head)
        for license_id in chunk:
            keys += [
                cache_key(f"ipcontrol:seen-machines:{license_id}"),
                cache_key(f"ipcontrol:seen-ips:{license_id}"),
            ]
            args.append(len(by_license[license_id]))
            for row in by_license[license_id]:
                created = datetime.fromisoformat(row["created_at"]).timestamp()
                args += [created, row["machine_id"], row["ip_address"] or ""]
        script(keys=keys, args=args, client=pipeline)
    try:
        flags = [flag for chunk_flags in pipeline.execute() for flag in chunk_flags]
    except redis.RedisError:
        logger.warning("collision pre-filter unavailable; detecting on every license used", exc_info=True)
        return set(by_license)
    return {license_id for license_id, flag in zip(by_license, flags, strict=True) if flag}


def _chunks(by_license: dict[str, list], size: int):
    """The licenses of ``by_license`` in runs of about ``size`` attempts (a license's attempts
    are never split: its flag needs them all)."""
    chunk, attempts = [], 0
    for license_id, rows in by_license.items():
        chunk.append(license_id)
        attempts += len(rows)
        if attempts >= size:
            yield chunk
            chunk, attempts = [], 0
    if chunk:
        yield chunk


def collisions_detect(*, license_ids, now: datetime | None = None, config: IpControlConfig | None = None) -> int:
    """Look for over-limit use and cloned machines on ``license_ids`` in their recent valid
    attempts; return how many collisions were opened."""
    now = now or timezone.now()
    config = config or ipcontrol_config()
    license_ids = list(license_ids)
    opened = 0
    recent = LicenseValidation.objects.filter(license_id__in=license_ids, is_valid=True)
    window = recent.filter(created_at__gt=now - timedelta(minutes=config.collision_window_minutes))
    busy = (
        window.values("license_id")
        .annotate(machines=Count("machine_id", distinct=True), ips=Count("ip_address", distinct=True))
        .filter(Q(machines__gt=1) | Q(ips__gt=1))
    )
    for stats in busy:
        opened += _over_limit_check(stats["license_id"], stats["machines"], stats["ips"], window, now)
    clone_window = recent.filter(created_at__gt=now - timedelta(minutes=config.clone_window_minutes))
    suspects = (
        clone_window.exclude(ip_binding_id=None)
        .values("license_id", "ip_binding_id")
        .annotate(ips=Count("ip_address", distinct=True))
        .filter(ips__gt=1)
    )
    for suspect in suspects:
        opened += _clone_check(suspect["license_id"], suspect["ip_binding_id"], clone_window, config, now)
    return opened


@transaction.atomic
def _over_limit_check(license_id, machines: int, ips: int, window, now: datetime) -> int:
    license = License.objects.select_for_update().filter(pk=license_id).first()
    if license is None:
        return 0
    allowed = license_effective_limits(license=license).get("max_machines")
    used = max(machines, ips)
    if allowed is None or used <= allowed:
        return 0
    # The first and the latest machine in use in the window.
    seen = list(
        window.filter(license_id=license_id)
        .exclude(ip_binding_id=None)
        .order_by("created_at")
        .values_list("ip_binding_id", flat=True)
    )
    if not seen:
        return 0
    first, latest = seen[0], seen[-1]
    bindings = LicenseIpBinding.objects.in_bulk({first, latest})
    details = {"machines": machines, "ips": ips, "max_machines": allowed}
    _, created = collision_report(
        license=license,
        collision_type=Type.OVER_LIMIT,
        severity=over_limit_severity(used=used, allowed=allowed),
        binding_a=bindings[first],
        binding_b=bindings[latest] if latest != first else None,
        details=details,
        now=now,
    )
    return int(created)


def _ip_switches(ips: list[str]) -> int:
    return sum(1 for before, after in zip(ips, ips[1:], strict=False) if before != after)


@transaction.atomic
def _clone_check(license_id, binding_id, clone_window, config: IpControlConfig, now: datetime) -> int:
    ips = list(
        clone_window.filter(ip_binding_id=binding_id).order_by("created_at").values_list("ip_address", flat=True)
    )
    ips = [ip for ip in ips if ip]
    if _ip_switches(ips) < config.clone_min_switches:
        return 0
    license = License.objects.select_for_update().filter(pk=license_id).first()
    binding = LicenseIpBinding.objects.filter(pk=binding_id).first()
    if license is None or binding is None:
        return 0
    distinct = sorted(set(ips))
    _, created = collision_report(
        license=license,
        collision_type=Type.CLONED_MACHINE,
        severity=clone_severity(ip_count=len(distinct)),
        binding_a=binding,
        binding_b=None,
        details={"fingerprint": binding.machine_id, "ips": distinct, "switches": _ip_switches(ips)},
        now=now,
    )
    return int(created)


def churn_check(
    *, license: License, binding: LicenseIpBinding, now: datetime, config: IpControlConfig | None = None
) -> LicenseCollision | None:
    """Called inside the activation transaction (license row locked), after ``binding`` was
    activated: churn if the license saw ``churn_threshold`` deactivations within the window."""
    config = config or ipcontrol_config()
    since = now - timedelta(minutes=config.churn_window_minutes)
    deactivations = LicenseValidation.objects.filter(
        license=license, result_code="DEACTIVATED", created_at__gt=since
    ).exclude(ip_binding_id=None)
    count = deactivations.count()
    if count < config.churn_threshold:
        return None
    last_off = deactivations.exclude(ip_binding=binding).order_by("-created_at").first()
    other = last_off.ip_binding if last_off is not None else None
    collision, _ = collision_report(
        license=license,
        collision_type=Type.ACTIVATION_CHURN,
        severity=churn_severity(deactivations=count, threshold=config.churn_threshold),
        binding_a=other or binding,
        binding_b=binding if other is not None else None,
        details={"deactivations": count, "window_minutes": config.churn_window_minutes},
        now=now,
    )
    return collision


def _close(collision: LicenseCollision, *, now: datetime, auto: bool, user: User | None, note: str) -> None:
    collision.resolved_at = now
    collision.auto_resolved = auto
    collision.resolved_by = user
    collision.resolution_note = note[:255]
    collision.save(update_fields=["resolved_at", "auto_resolved", "resolved_by", "resolution_note", "updated_at"])
    emit_event("collision.resolved", organization=collision.organization, payload=collision_event_data(collision))


@transaction.atomic
def collision_resolve(
    *, collision: LicenseCollision, actor: User | None = None, note: str = "", source: str = "system", ip_address=None
) -> LicenseCollision:
    """Staff close a collision by hand."""
    collision = LicenseCollision.objects.select_for_update().get(pk=collision.pk)
    if collision.resolved_at is not None:
        raise Conflict("This collision is already resolved.", code="collision_already_resolved")
    _close(collision, now=timezone.now(), auto=False, user=actor, note=note)
    audit_record(
        action=AuditLog.Action.UPDATE,
        resource=collision,
        user=actor,
        changes={"resolved_at": [None, collision.resolved_at.isoformat()], "resolution_note": ["", note]},
        ip_address=ip_address,
        source=source,
    )
    return collision


def collisions_auto_resolve(*, now: datetime | None = None, config: IpControlConfig | None = None) -> int:
    """Resolve collisions not seen again for the quiet period; return how many."""
    now = now or timezone.now()
    config = config or ipcontrol_config()
    quiet_since = now - timedelta(minutes=config.collision_quiet_minutes)
    resolved = 0
    stale = LicenseCollision.objects.filter(resolved_at__isnull=True, last_seen_at__lt=quiet_since)
    for pk in stale.values_list("pk", flat=True):
        with transaction.atomic():
            collision = (
                LicenseCollision.objects.select_for_update()
                .filter(pk=pk, resolved_at__isnull=True, last_seen_at__lt=quiet_since)
                .first()
            )
            if collision is None:
                continue  # seen again, or resolved by hand, meanwhile
            _close(collision, now=now, auto=True, user=None, note="No longer observed")
            resolved += 1
    if resolved:
        system_event_record(
            event_type="license.collisions_auto_resolved",
            message=f"{resolved} collision(s) resolved after {config.collision_quiet_minutes} quiet minutes",
            source="ipcontrol.auto_resolve_collisions",
        )
    return resolved
