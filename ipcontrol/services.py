"""What installed software calls, by license key: validate, activate and deactivate a machine.

Every answer is a ``LicenseCheck`` with an UPPER_SNAKE ``code``. Every attempt is recorded in
``license_validations`` (validations through the buffer in ``ipcontrol.buffer``; activations
synchronously, inside their transaction, as churn detection counts them). ``max_machines`` is
enforced with the license row locked, so concurrent activations can never exceed it.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from audit.models import AuditLog, SystemEvent
from audit.services import audit_record, system_event_record
from licensing.models import License
from licensing.selectors import license_effective_limits
from licensing.services import license_key_normalize

from .buffer import validation_row, validation_rows_record
from .certificates import certificate_issue
from .collisions import churn_check
from .models import LicenseIpBinding, LicenseValidation
from .selectors import ipcontrol_config, license_seats_lookup
from .snapshots import Found, LicenseFacts, LicenseSnapshot, Seat, license_snapshots_forget


class Code:
    """Result codes of the public license endpoints."""

    VALID = "VALID"
    NOT_FOUND = "NOT_FOUND"
    EXPIRED = "EXPIRED"
    SUSPENDED = "SUSPENDED"
    REVOKED = "REVOKED"
    NO_MACHINE = "NO_MACHINE"
    TOO_MANY_MACHINES = "TOO_MANY_MACHINES"
    ACTIVATED = "ACTIVATED"
    DEACTIVATED = "DEACTIVATED"

    ALL = (
        VALID, NOT_FOUND, EXPIRED, SUSPENDED, REVOKED, NO_MACHINE, TOO_MANY_MACHINES, ACTIVATED, DEACTIVATED,
    )  # fmt: skip


DETAILS = {
    Code.VALID: "The license is valid on this machine.",
    # The same words for every unknown key: nothing about other licenses leaks.
    Code.NOT_FOUND: "No license matches this key.",
    Code.EXPIRED: "The license has expired.",
    Code.SUSPENDED: "The license is suspended.",
    Code.REVOKED: "The license was revoked.",
    Code.NO_MACHINE: "The license is not activated on this machine.",
    Code.TOO_MANY_MACHINES: "The license is in use on as many machines as it allows.",
    Code.ACTIVATED: "This machine is activated.",
    Code.DEACTIVATED: "This machine was deactivated; its seat is free.",
}


@dataclass
class LicenseCheck:
    valid: bool
    code: str
    detail: str
    #: the license row (activation) or its facts (validation)
    license: License | LicenseFacts | None = None
    binding: LicenseIpBinding | Seat | None = None
    active_machines: int | None = None


def _check(code: str, *, license=None, binding=None, detail: str = "", active_machines=None) -> LicenseCheck:
    return LicenseCheck(
        valid=code in (Code.VALID, Code.ACTIVATED),
        code=code,
        detail=detail or DETAILS[code],
        license=license,
        binding=binding,
        active_machines=active_machines,
    )


def license_status_refusal(license: License | LicenseFacts, now: datetime) -> str | None:
    """Why ``license`` cannot be used now, as a code; expiry counts from ``expires_at`` even
    before the beat job has marked the license expired."""
    if license.status == License.Status.REVOKED:
        return Code.REVOKED
    if license.status == License.Status.SUSPENDED:
        return Code.SUSPENDED
    if license.status == License.Status.EXPIRED or (license.expires_at is not None and license.expires_at <= now):
        return Code.EXPIRED
    return None


def _license_locked_by_key(key: str) -> License | None:
    normalized = license_key_normalize(key)
    return License.objects.select_for_update().filter(license_key=normalized).first() if normalized else None


def _record(check: LicenseCheck, *, fingerprint: str, hostname: str, ip_address, now: datetime, sync: bool) -> None:
    row = _row(check, fingerprint=fingerprint, hostname=hostname, ip_address=ip_address, now=now)
    if sync:
        LicenseValidation.objects.create(**row)
    else:
        validation_rows_record([row])


def _row(check: LicenseCheck, *, fingerprint: str, hostname: str, ip_address, now: datetime) -> dict:
    return validation_row(
        license=check.license,
        binding=check.binding,
        ip_address=ip_address,
        machine_id=fingerprint,
        hostname=hostname,
        is_valid=check.valid,
        result_code=check.code,
        failure_reason="" if check.valid else check.detail,
        created_at=now,
    )


def license_validate(
    *,
    key: str,
    fingerprint: str = "",
    hostname: str = "",
    ip_address: str | None = None,
    snapshot: LicenseSnapshot | None = None,
) -> LicenseCheck:
    """Check ``key`` on the machine ``fingerprint``: from ``snapshot`` (the license's Redis copy,
    read with the rate limits) when it is current, else one indexed read. The attempt row, the
    binding's ``last_seen``/IP and collision detection follow through the buffer."""
    now = timezone.now()
    check = _validate(key=key, fingerprint=fingerprint, now=now, snapshot=snapshot)
    _record(check, fingerprint=fingerprint, hostname=hostname, ip_address=ip_address, now=now, sync=False)
    return check


def _validate(*, key: str, fingerprint: str, now: datetime, snapshot: LicenseSnapshot | None = None) -> LicenseCheck:
    return _judge(license_seats_lookup(key=key, fingerprint=fingerprint, snapshot=snapshot), fingerprint, now)


def license_validation_attempt(
    *, found: Found, fingerprint: str, hostname: str, ip_address: str | None
) -> tuple[LicenseCheck, dict]:
    """What ``license_validate`` answers and records when the license is ``found`` (a process copy
    of its snapshot that names the machine, see ``snapshot_answers``), without recording it: the
    caller pushes the row in its rate-limit round trip, if the copy is still current."""
    now = timezone.now()
    check = _judge(found, fingerprint, now)
    return check, _row(check, fingerprint=fingerprint, hostname=hostname, ip_address=ip_address, now=now)


def _judge(found: Found, fingerprint: str, now: datetime) -> LicenseCheck:
    if found is None:
        return _check(Code.NOT_FOUND)
    license, seats = found
    refusal = license_status_refusal(license, now)
    if refusal:
        return _check(refusal, license=license)
    if not fingerprint:
        return _check(Code.NO_MACHINE, license=license, detail="No machine fingerprint was given.")
    active = [seat for seat in seats if seat.is_active]
    binding = next((seat for seat in seats if seat.machine_id == fingerprint), None)
    if binding is None or not binding.is_active:
        return _check(Code.NO_MACHINE, license=license, binding=binding, active_machines=len(active))
    allowed = license_effective_limits(license=license).get("max_machines")
    if allowed is not None:
        # When the limit was lowered below the machines already active, the earliest activated keep
        # their seats.
        mine = (binding.activated_at, str(binding.pk))
        earlier = sum(1 for other in active if (other.activated_at, str(other.pk)) < mine)
        if earlier >= allowed:
            return _check(Code.TOO_MANY_MACHINES, license=license, binding=binding, active_machines=len(active))
    return _check(Code.VALID, license=license, binding=binding, active_machines=len(active))


def license_checkout(
    *,
    key: str,
    fingerprint: str,
    hostname: str = "",
    ip_address: str | None = None,
    snapshot: LicenseSnapshot | None = None,
) -> tuple[LicenseCheck, dict | None]:
    """Validate like ``license_validate`` (the attempt is recorded the same way) and, when the
    answer is VALID, sign an offline certificate for this machine."""
    now = timezone.now()
    check = _validate(key=key, fingerprint=fingerprint, now=now, snapshot=snapshot)
    _record(check, fingerprint=fingerprint, hostname=hostname, ip_address=ip_address, now=now, sync=False)
    if not check.valid:
        return check, None
    ttl_hours = ipcontrol_config().certificate_ttl_hours
    return check, certificate_issue(license=check.license, fingerprint=fingerprint, now=now, ttl_hours=ttl_hours)


def license_activate(*, key: str, fingerprint: str, hostname: str = "", ip_address: str | None = None) -> LicenseCheck:
    """Activate the machine ``fingerprint`` on the license (idempotent for an active machine).
    The license row is locked for the count and the insert, so ``max_machines`` holds under any
    concurrency."""
    now = timezone.now()
    with transaction.atomic():
        check = _activate(key=key, fingerprint=fingerprint, hostname=hostname, ip_address=ip_address, now=now)
        _record(check, fingerprint=fingerprint, hostname=hostname, ip_address=ip_address, now=now, sync=True)
        if check.code == Code.ACTIVATED and check.binding.activated_at == now:
            churn_check(license=check.license, binding=check.binding, now=now)
    return check


def _activate(*, key, fingerprint, hostname, ip_address, now) -> LicenseCheck:
    license = _license_locked_by_key(key)
    if license is None:
        return _check(Code.NOT_FOUND)
    refusal = license_status_refusal(license, now)
    if refusal:
        return _check(refusal, license=license)
    binding = LicenseIpBinding.objects.filter(license=license, machine_id=fingerprint).first()
    active = LicenseIpBinding.objects.filter(license=license, is_active=True).count()
    if binding is not None and binding.is_active:
        binding.hostname = hostname[:255] or binding.hostname
        binding.ip_address = ip_address or binding.ip_address
        binding.last_seen = now
        binding.save(update_fields=["hostname", "ip_address", "last_seen", "updated_at"])
        return _check(Code.ACTIVATED, license=license, binding=binding, active_machines=active)
    allowed = license_effective_limits(license=license).get("max_machines")
    if allowed is not None and active >= allowed:
        return _check(Code.TOO_MANY_MACHINES, license=license, binding=binding, active_machines=active)
    if binding is None:
        binding = LicenseIpBinding.objects.create(
            organization_id=license.organization_id,
            license=license,
            machine_id=fingerprint,
            hostname=hostname[:255],
            ip_address=ip_address,
            first_seen=now,
            last_seen=now,
            activated_at=now,
        )
        action = AuditLog.Action.CREATE
    else:
        binding.is_active, binding.deactivated_at, binding.activated_at, binding.last_seen = True, None, now, now
        binding.hostname = hostname[:255] or binding.hostname
        binding.ip_address = ip_address or binding.ip_address
        binding.activation_count += 1
        binding.save()
        action = AuditLog.Action.UPDATE
    audit_record(
        action=action,
        resource=binding,
        organization=license.organization,
        changes={"is_active": [False, True], "machine_id": [None, fingerprint]},
        ip_address=ip_address,
        source="license_client",
    )
    return _check(Code.ACTIVATED, license=license, binding=binding, active_machines=active + 1)


def license_deactivate(
    *, key: str, fingerprint: str, hostname: str = "", ip_address: str | None = None
) -> LicenseCheck:
    """Free the seat of ``fingerprint`` (allowed whatever the license's status)."""
    now = timezone.now()
    with transaction.atomic():
        license = _license_locked_by_key(key)
        binding = None
        if license is None:
            check = _check(Code.NOT_FOUND)
        else:
            binding = LicenseIpBinding.objects.filter(license=license, machine_id=fingerprint, is_active=True).first()
            if binding is None:
                check = _check(Code.NO_MACHINE, license=license)
            else:
                binding.last_seen = now
                _binding_free(binding, now=now, actor=None, source="license_client", ip_address=ip_address)
                check = _check(Code.DEACTIVATED, license=license, binding=binding)
        _record(check, fingerprint=fingerprint, hostname=hostname, ip_address=ip_address, now=now, sync=True)
    return check


def _binding_free(binding: LicenseIpBinding, *, now: datetime, actor, source: str, ip_address) -> None:
    """Deactivate ``binding`` (its license row is locked by the caller) and audit it."""
    binding.is_active, binding.deactivated_at = False, now
    binding.save(update_fields=["is_active", "deactivated_at", "last_seen", "updated_at"])
    audit_record(
        action=AuditLog.Action.UPDATE,
        resource=binding,
        user=actor,
        changes={"is_active": [True, False]},
        ip_address=ip_address,
        source=source,
    )


@transaction.atomic
def binding_deactivate(*, binding: LicenseIpBinding, actor=None, source: str = "system", ip_address=None) -> bool:
    """Staff free a machine's seat. Returns whether it was active."""
    License.objects.select_for_update().filter(pk=binding.license_id).first()  # serialize with activations
    binding = LicenseIpBinding.objects.filter(pk=binding.pk, is_active=True).first()
    if binding is None:
        return False
    _binding_free(binding, now=timezone.now(), actor=actor, source=source, ip_address=ip_address)
    return True


def license_check_body(check: LicenseCheck, *, nonce: str | None) -> dict:
    """The JSON answer of the public endpoints. Unknown keys get ``license: null``."""
    body = {"valid": check.valid, "code": check.code, "detail": check.detail, "nonce": nonce, "license": None}
    license = check.license
    if license is not None:
        limits = license_effective_limits(license=license)
        body["license"] = {
            "id": str(license.pk),
            "status": license.status,
            "plan": license.plan.code,
            "expires_at": license.expires_at.isoformat() if license.expires_at else None,
            "limits": limits,
            "max_machines": limits.get("max_machines"),
            "active_machines": check.active_machines,
        }
    return body


def bindings_deactivate_stale(*, now: datetime | None = None) -> int:
    """Free the seats of machines not seen for ``binding_stale_hours``; return how many."""
    now = now or timezone.now()
    hours = ipcontrol_config().binding_stale_hours
    stale = LicenseIpBinding.objects.filter(is_active=True, last_seen__lt=now - timedelta(hours=hours))
    with transaction.atomic():
        license_ids = set(stale.select_for_update().values_list("license_id", flat=True))
        count = stale.update(is_active=False, deactivated_at=now, updated_at=now)
        license_snapshots_forget(license_ids=license_ids)
    if count:
        system_event_record(
            event_type="license.bindings_deactivated",
            severity=SystemEvent.Severity.INFO,
            message=f"{count} machine(s) not seen for {hours} hours were deactivated",
            source="ipcontrol.deactivate_stale_bindings",
        )
    return count
