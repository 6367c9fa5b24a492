"""What installed software calls, by license key: validate, activate and deactivate a machine,
and keep its lease alive with heartbeats.

Every answer is a ``LicenseCheck`` with an UPPER_SNAKE ``code``. Every attempt is recorded in
``license_validations`` (validations and heartbeats through the buffer in ``ipcontrol.buffer``;
activations synchronously, inside their transaction, as churn detection counts them). The license's
policy (``licensing.selectors.license_policy``) says how many machines it admits: ``max_machines``,
and past it the overage allowance (answered valid with the OVERAGE code). Seats are counted with
the license row locked, so concurrent activations can never exceed the ceiling. With a heartbeat
window a seat is a lease: a machine whose lease lapsed (window plus grace) is released, by the
lease job or by the next activation that needs its seat, and re-admitted when it beats again and
a seat is free.
"""

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from audit.models import AuditLog, SystemEvent
from audit.services import audit_record, system_event_record
from licensing.models import BillingState, License
from licensing.selectors import LicensePolicy, license_effective_limits, license_policy
from licensing.services import license_key_normalize
from settings_app.events import emit_event

from .buffer import LEASE_FIELD, validation_row, validation_rows_record
from .certificates import certificate_issue
from .collisions import churn_check
from .models import LicenseIpBinding, LicenseValidation
from .partitions import validation_partitions_drop_expired
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
    OVERAGE = "OVERAGE"
    ENTITLEMENTS_MISSING = "ENTITLEMENTS_MISSING"
    ALIVE = "ALIVE"

    ALL = (
        VALID, NOT_FOUND, EXPIRED, SUSPENDED, REVOKED, NO_MACHINE, TOO_MANY_MACHINES, ACTIVATED, DEACTIVATED,
        OVERAGE, ENTITLEMENTS_MISSING, ALIVE,
    )  # fmt: skip
    #: the answers that let the software run
    USABLE = frozenset({VALID, ACTIVATED, OVERAGE, ALIVE})


class CheckWarning:
    """Warnings an answer may carry next to its code (the license is usable, but ...)."""

    PAYMENT_PAST_DUE = "PAYMENT_PAST_DUE"


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
    Code.OVERAGE: "The license is over its machine limit, within its overage allowance.",
    Code.ENTITLEMENTS_MISSING: "The license lacks entitlements this software asked for.",
    Code.ALIVE: "The machine's lease was renewed.",
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
    #: the entitlement codes asked for that the license lacks (ENTITLEMENTS_MISSING)
    missing_entitlements: tuple[str, ...] = ()
    #: until when the machine's seat is leased (heartbeats), if it is
    lease_expires_at: datetime | None = None
    #: the license's policy, when the check worked it out (the answer reuses it)
    policy: LicensePolicy | None = None


def _check(code: str, *, license=None, binding=None, detail: str = "", active_machines=None, **extra) -> LicenseCheck:
    return LicenseCheck(
        valid=code in Code.USABLE,
        code=code,
        detail=detail or DETAILS[code],
        license=license,
        binding=binding,
        active_machines=active_machines,
        **extra,
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
        row.pop(LEASE_FIELD, None)  # set on the binding by the caller
        LicenseValidation.objects.create(**row)
    else:
        validation_rows_record([row])


def _row(check: LicenseCheck, *, fingerprint: str, hostname: str, ip_address, now: datetime) -> dict:
    row = validation_row(
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
    if check.lease_expires_at is not None:
        row[LEASE_FIELD] = check.lease_expires_at.isoformat()  # the flush extends the machine's lease
    return row


def license_validate(
    *,
    key: str,
    fingerprint: str = "",
    hostname: str = "",
    ip_address: str | None = None,
    snapshot: LicenseSnapshot | None = None,
    entitlements: tuple[str, ...] = (),
) -> LicenseCheck:
    """Check ``key`` on the machine ``fingerprint`` (and that the license holds ``entitlements``):
    from ``snapshot`` (the license's Redis copy, read with the rate limits) when it is current,
    else one indexed read. The attempt row, the binding's ``last_seen``/IP and collision detection
    follow through the buffer."""
    now = timezone.now()
    check = _validate(key=key, fingerprint=fingerprint, now=now, snapshot=snapshot, entitlements=entitlements)
    _record(check, fingerprint=fingerprint, hostname=hostname, ip_address=ip_address, now=now, sync=False)
    return check


def _validate(
    *, key: str, fingerprint: str, now: datetime, snapshot: LicenseSnapshot | None = None, entitlements=()
) -> LicenseCheck:
    found = license_seats_lookup(key=key, fingerprint=fingerprint, snapshot=snapshot)
    return _judge(found, fingerprint, now, entitlements=entitlements)


def license_validation_attempt(
    *, found: Found, fingerprint: str, hostname: str, ip_address: str | None, entitlements: tuple[str, ...] = ()
) -> tuple[LicenseCheck, dict]:
    """What ``license_validate`` answers and records when the license is ``found`` (a process copy
    of its snapshot that names the machine, see ``snapshot_answers``), without recording it: the
    caller pushes the row in its rate-limit round trip, if the copy is still current."""
    now = timezone.now()
    check = _judge(found, fingerprint, now, entitlements=entitlements)
    return check, _row(check, fingerprint=fingerprint, hostname=hostname, ip_address=ip_address, now=now)


def _judge(found: Found, fingerprint: str, now: datetime, *, entitlements=()) -> LicenseCheck:
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
    policy = license_policy(license=license)
    code = Code.VALID
    if policy.max_machines is not None:
        # When the limit was lowered below the machines already active, the earliest activated keep
        # their seats; past the limit, the overage allowance's.
        mine = (binding.activated_at, str(binding.pk))
        rank = sum(1 for other in active if (other.activated_at, str(other.pk)) < mine)
        if rank >= policy.machine_ceiling:
            return _check(
                Code.TOO_MANY_MACHINES, license=license, binding=binding, active_machines=len(active), policy=policy
            )
        if policy.is_overage(rank):
            code = Code.OVERAGE
    missing = tuple(sorted(set(entitlements) - set(policy.entitlements)))
    if missing:
        return _check(
            Code.ENTITLEMENTS_MISSING,
            license=license,
            binding=binding,
            active_machines=len(active),
            missing_entitlements=missing,
            detail=f"The license lacks the entitlements {', '.join(missing)}.",
            policy=policy,
        )
    return _check(code, license=license, binding=binding, active_machines=len(active), policy=policy)


def license_checkout(
    *,
    key: str,
    fingerprint: str,
    hostname: str = "",
    ip_address: str | None = None,
    snapshot: LicenseSnapshot | None = None,
    issue=certificate_issue,
) -> tuple[LicenseCheck, dict | None]:
    """Validate like ``license_validate`` (the attempt is recorded the same way) and, when the
    answer is VALID, ``issue`` an offline document for this machine: a signed certificate, or an
    encrypted license file (``ipcontrol.offline``)."""
    now = timezone.now()
    check = _validate(key=key, fingerprint=fingerprint, now=now, snapshot=snapshot)
    _record(check, fingerprint=fingerprint, hostname=hostname, ip_address=ip_address, now=now, sync=False)
    if not check.valid:
        return check, None
    ttl_hours = ipcontrol_config().certificate_ttl_hours
    return check, issue(license=check.license, fingerprint=fingerprint, now=now, ttl_hours=ttl_hours)


def license_activate(*, key: str, fingerprint: str, hostname: str = "", ip_address: str | None = None) -> LicenseCheck:
    """Activate the machine ``fingerprint`` on the license (idempotent for an active machine).
    The license row is locked for the count and the insert, so the policy's ceiling holds under
    any concurrency."""
    now = timezone.now()
    with transaction.atomic():
        check = _activate(key=key, fingerprint=fingerprint, hostname=hostname, ip_address=ip_address, now=now)
        _record(check, fingerprint=fingerprint, hostname=hostname, ip_address=ip_address, now=now, sync=True)
        if check.valid and check.binding.activated_at == now:
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
    if binding is not None and binding.is_active:
        binding.hostname = hostname[:255] or binding.hostname
        binding.ip_address = ip_address or binding.ip_address
        binding.last_seen = now
        binding.save(update_fields=["hostname", "ip_address", "last_seen", "updated_at"])
        active = LicenseIpBinding.objects.filter(license=license, is_active=True).count()
        return _check(Code.ACTIVATED, license=license, binding=binding, active_machines=active)
    return _seat_take(license, binding, fingerprint=fingerprint, hostname=hostname, ip_address=ip_address, now=now)


def _seat_take(
    license: License,
    binding: LicenseIpBinding | None,
    *,
    fingerprint: str,
    hostname: str,
    ip_address: str | None,
    now: datetime,
    admitted: str = Code.ACTIVATED,
) -> LicenseCheck:
    """Give the machine ``fingerprint`` (``binding`` when it was seen before) a seat on the locked
    ``license`` if its policy has one left, after releasing the lapsed leases that hold seats.
    Answers ``admitted``, or OVERAGE past ``max_machines`` (with a ``license.overage`` event)."""
    policy = license_policy(license=license)
    _leases_release(license=license, now=now)
    active = LicenseIpBinding.objects.filter(license=license, is_active=True).count()
    ceiling = policy.machine_ceiling
    if ceiling is not None and active >= ceiling:
        return _check(Code.TOO_MANY_MACHINES, license=license, binding=binding, active_machines=active)
    window = policy.heartbeat_window_seconds
    lease = now + timedelta(seconds=window) if window else None
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
            last_heartbeat_at=now if lease else None,
            lease_expires_at=lease,
        )
        action = AuditLog.Action.CREATE
    else:
        binding.is_active, binding.deactivated_at, binding.activated_at, binding.last_seen = True, None, now, now
        binding.deactivation_reason = ""
        binding.last_heartbeat_at, binding.lease_expires_at = (now if lease else None), lease
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
    overage = policy.is_overage(active)
    emit_event("machine.activated", organization=license.organization_id, payload=machine_event_data(binding))
    if overage:
        emit_event(
            "license.overage",
            organization=license.organization_id,
            payload={
                "license": str(license.pk),
                "machine": machine_event_data(binding),
                "max_machines": policy.max_machines,
                "active_machines": active + 1,
                "overage_allowance": policy.overage_allowance,
            },
        )
    return _check(
        Code.OVERAGE if overage else admitted,
        license=license,
        binding=binding,
        active_machines=active + 1,
        lease_expires_at=lease,
    )


def machine_event_data(binding: LicenseIpBinding) -> dict:
    """The event payload describing a machine (``machine.*`` events)."""
    return {
        "id": str(binding.pk),
        "license": str(binding.license_id),
        "machine_id": binding.machine_id,
        "name": binding.name,
        "hostname": binding.hostname,
        "is_active": binding.is_active,
        "deactivation_reason": binding.deactivation_reason,
        "lease_expires_at": binding.lease_expires_at.isoformat() if binding.lease_expires_at else None,
    }


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
                _binding_free(
                    binding,
                    now=now,
                    actor=None,
                    source="license_client",
                    ip_address=ip_address,
                    reason=LicenseIpBinding.DeactivationReason.CLIENT,
                )
                check = _check(Code.DEACTIVATED, license=license, binding=binding)
        _record(check, fingerprint=fingerprint, hostname=hostname, ip_address=ip_address, now=now, sync=True)
    return check


def _binding_free(binding: LicenseIpBinding, *, now: datetime, actor, source: str, ip_address, reason: str) -> None:
    """Deactivate ``binding`` (its license row is locked by the caller), audit it and emit
    ``machine.heartbeat_lost`` (a lapsed lease) or ``machine.deactivated``."""
    binding.is_active, binding.deactivated_at, binding.deactivation_reason = False, now, reason
    binding.lease_expires_at = None
    fields = ["is_active", "deactivated_at", "deactivation_reason", "lease_expires_at", "last_seen", "updated_at"]
    binding.save(update_fields=fields)
    audit_record(
        action=AuditLog.Action.UPDATE,
        resource=binding,
        user=actor,
        changes={"is_active": [True, False], "deactivation_reason": ["", reason]},
        ip_address=ip_address,
        source=source,
    )
    lost = reason == LicenseIpBinding.DeactivationReason.HEARTBEAT_LOST
    event = "machine.heartbeat_lost" if lost else "machine.deactivated"
    emit_event(event, organization=binding.organization_id, payload=machine_event_data(binding))


@transaction.atomic
def binding_deactivate(
    *,
    binding: LicenseIpBinding,
    actor=None,
    source: str = "system",
    ip_address=None,
    reason: str = LicenseIpBinding.DeactivationReason.STAFF,
) -> bool:
    """Free a machine's seat (staff, or the customer with ``reason`` customer). Returns whether
    it was active."""
    License.objects.select_for_update().filter(pk=binding.license_id).first()  # serialize with activations
    binding = LicenseIpBinding.objects.filter(pk=binding.pk, is_active=True).first()
    if binding is None:
        return False
    _binding_free(binding, now=timezone.now(), actor=actor, source=source, ip_address=ip_address, reason=reason)
    return True


@transaction.atomic
def binding_rename(*, binding: LicenseIpBinding, name: str, actor=None, source: str = "license_token", ip_address=None):
    """Give a machine the name its customer knows it by (audited)."""
    binding = LicenseIpBinding.objects.select_for_update().get(pk=binding.pk)
    before, binding.name = binding.name, name.strip()[:100]
    if binding.name != before:
        binding.save(update_fields=["name", "updated_at"])
        audit_record(
            action=AuditLog.Action.UPDATE,
            resource=binding,
            user=actor,
            changes={"name": [before, binding.name]},
            ip_address=ip_address,
            source=source,
        )
    return binding


# --- heartbeats and leases ------------------------------------------------------------------------


def license_heartbeat(
    *,
    key: str,
    fingerprint: str,
    hostname: str = "",
    ip_address: str | None = None,
    snapshot: LicenseSnapshot | None = None,
) -> LicenseCheck:
    """Keep the machine's lease alive: judged like a validation (from the snapshot when it is
    current), the attempt row carrying the new lease through the buffer, which extends it. A
    machine released for a lapsed lease is re-admitted, synchronously, if a seat is free."""
    now = timezone.now()
    found = license_seats_lookup(key=key, fingerprint=fingerprint, snapshot=snapshot)
    check = heartbeat_judge(found, fingerprint, now)
    if check.code == Code.NO_MACHINE and check.binding is not None:
        return _heartbeat_readmit(key=key, fingerprint=fingerprint, hostname=hostname, ip_address=ip_address)
    _record(check, fingerprint=fingerprint, hostname=hostname, ip_address=ip_address, now=now, sync=False)
    return check


def license_heartbeat_attempt(
    *, found: Found, fingerprint: str, hostname: str, ip_address: str | None
) -> tuple[LicenseCheck, dict]:
    """``license_validation_attempt`` for a heartbeat: the answer and its row (with the lease)."""
    now = timezone.now()
    check = heartbeat_judge(found, fingerprint, now)
    return check, _row(check, fingerprint=fingerprint, hostname=hostname, ip_address=ip_address, now=now)


def heartbeat_judge(found: Found, fingerprint: str, now: datetime) -> LicenseCheck:
    """A heartbeat's answer: ALIVE (or OVERAGE) with the lease it extends to, else the refusal."""
    check = _judge(found, fingerprint, now)
    if not check.valid:
        return check
    window = check.policy.heartbeat_window_seconds
    check.lease_expires_at = now + timedelta(seconds=window) if window else None
    if check.code == Code.VALID:
        check.code, check.detail = Code.ALIVE, DETAILS[Code.ALIVE]
    return check


#: why a machine may be re-admitted by a heartbeat: it was released, not deactivated on purpose
_READMITTABLE = (LicenseIpBinding.DeactivationReason.HEARTBEAT_LOST, LicenseIpBinding.DeactivationReason.STALE)


def _heartbeat_readmit(*, key: str, fingerprint: str, hostname: str, ip_address: str | None) -> LicenseCheck:
    now = timezone.now()
    with transaction.atomic():
        license = _license_locked_by_key(key)
        binding = (
            None
            if license is None
            else LicenseIpBinding.objects.filter(license=license, machine_id=fingerprint).first()
        )
        refusal = license_status_refusal(license, now) if license is not None else Code.NOT_FOUND
        if refusal:
            check = _check(refusal, license=license)
        elif binding is None:
            check = _check(Code.NO_MACHINE, license=license)
        elif binding.is_active:  # re-admitted by a concurrent beat meanwhile
            check = heartbeat_judge(license_seats_lookup(key=key, fingerprint=fingerprint), fingerprint, now)
        elif binding.deactivation_reason not in _READMITTABLE:
            check = _check(
                Code.NO_MACHINE,
                license=license,
                binding=binding,
                detail="This machine was deactivated; activate it again.",
            )
        else:
            check = _seat_take(
                license, binding, fingerprint=fingerprint, hostname=hostname, ip_address=ip_address, now=now,
                admitted=Code.ALIVE,
            )  # fmt: skip
        _record(check, fingerprint=fingerprint, hostname=hostname, ip_address=ip_address, now=now, sync=True)
    return check


def _leases_release(*, license: License, now: datetime) -> int:
    """Release the machines of the locked ``license`` whose lease lapsed (expired for longer than
    the grace); return how many."""
    cutoff = now - timedelta(seconds=ipcontrol_config().heartbeat_grace_seconds)
    lapsed = LicenseIpBinding.objects.filter(license=license, is_active=True, lease_expires_at__lt=cutoff)
    released = 0
    for binding in lapsed:
        _binding_free(
            binding,
            now=now,
            actor=None,
            source="system",
            ip_address=None,
            reason=LicenseIpBinding.DeactivationReason.HEARTBEAT_LOST,
        )
        released += 1
    return released


def leases_release_lapsed(*, now: datetime | None = None) -> int:
    """The lease job: release every machine whose lease lapsed, one license at a time (each in its
    own short transaction, with the license row locked as activations lock it). Returns how many."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=ipcontrol_config().heartbeat_grace_seconds)
    license_ids = (
        LicenseIpBinding.objects.filter(is_active=True, lease_expires_at__lt=cutoff)
        .values_list("license_id", flat=True)
        .distinct()
    )
    released = 0
    for license_id in list(license_ids):
        with transaction.atomic():
            license = License.all_objects.select_for_update().filter(pk=license_id).first()
            if license is not None:
                released += _leases_release(license=license, now=now)
    if released:
        message = f"{released} machine(s) whose heartbeat lapsed were released"
        _job_done("release_lapsed_leases", "license.leases_released", message)
    return released


def _job_done(job: str, event_type: str, message: str, **data) -> None:
    """The beat job ``ipcontrol.<job>`` changed something: say so in the system events."""
    system_event_record(
        event_type=event_type, severity=SystemEvent.Severity.INFO, message=message, source=f"ipcontrol.{job}", data=data
    )


def license_check_body(check: LicenseCheck, *, nonce: str | None) -> dict:
    """The JSON answer of the public endpoints. Unknown keys get ``license: null``."""
    body = {"valid": check.valid, "code": check.code, "detail": check.detail, "nonce": nonce, "license": None}
    license = check.license
    if license is not None:
        limits = license_effective_limits(license=license)
        policy = check.policy or license_policy(license=license)
        body["license"] = {
            "id": str(license.pk),
            "status": license.status,
            "plan": license.plan.code,
            "expires_at": license.expires_at.isoformat() if license.expires_at else None,
            "limits": limits,
            "max_machines": limits.get("max_machines"),
            "active_machines": check.active_machines,
            **policy_body(policy),
            "billing_state": license.billing_state or BillingState.CURRENT,
        }
        if license.billing_state == BillingState.PAST_DUE:
            body["warnings"] = [CheckWarning.PAYMENT_PAST_DUE]
    if check.missing_entitlements:
        body["missing_entitlements"] = list(check.missing_entitlements)
    if check.lease_expires_at is not None:
        body["lease_expires_at"] = check.lease_expires_at.isoformat()
    return body


def policy_body(policy: LicensePolicy) -> dict:
    """A license's policy as answers and certificates show it."""
    return {
        "machine_scheme": policy.machine_scheme,
        "machine_ceiling": policy.machine_ceiling,
        "overage_allowance": policy.overage_allowance,
        "heartbeat_window_seconds": policy.heartbeat_window_seconds,
        "entitlements": list(policy.entitlements),
    }


def bindings_deactivate_stale(*, now: datetime | None = None) -> int:
    """Free the seats of machines not seen for ``binding_stale_hours`` (one statement), each with a
    ``machine.deactivated`` event; return how many."""
    now = now or timezone.now()
    hours = ipcontrol_config().binding_stale_hours
    stale = LicenseIpBinding.objects.filter(is_active=True, last_seen__lt=now - timedelta(hours=hours))
    with transaction.atomic():
        machines = list(stale.select_for_update())
        count = LicenseIpBinding.objects.filter(pk__in=[machine.pk for machine in machines]).update(
            is_active=False,
            deactivated_at=now,
            deactivation_reason=LicenseIpBinding.DeactivationReason.STALE,
            lease_expires_at=None,
            updated_at=now,
        )
        license_snapshots_forget(license_ids={machine.license_id for machine in machines})
        for machine in machines:
            machine.is_active, machine.deactivation_reason = False, LicenseIpBinding.DeactivationReason.STALE
            machine.lease_expires_at = None
            emit_event("machine.deactivated", organization=machine.organization_id, payload=machine_event_data(machine))
    if count:
        message = f"{count} machine(s) not seen for {hours} hours were deactivated"
        _job_done("deactivate_stale_bindings", "license.bindings_deactivated", message)
    return count


# --- retention of the validation log ----------------------------------------------------------------

#: rows deleted per statement (each its own short transaction) and the time one run may take: a
#: backlog of months is worked off over several runs without holding locks or the worker for long
RETENTION_BATCH = 5_000
RETENTION_RUN_SECONDS = 240


def validations_purge(
    *, now: datetime | None = None, batch_size: int = RETENTION_BATCH, max_seconds: float = RETENTION_RUN_SECONDS
) -> int:
    """Delete validation attempts older than ``validation_retention_days`` (system config): on
    PostgreSQL the months entirely past it first, partition by partition (``ipcontrol.partitions``);
    then the rows left before the cutoff, oldest first, ``batch_size`` at a time, until none is
    left or ``max_seconds`` have passed (the next run goes on). Returns how many rows were deleted
    one by one (a dropped month is counted in the system event, not here)."""
    now = now or timezone.now()
    days = ipcontrol_config().validation_retention_days
    cutoff = now - timedelta(days=days)
    dropped = validation_partitions_drop_expired(cutoff=cutoff)
    expired = LicenseValidation.objects.filter(created_at__lt=cutoff).order_by("created_at")
    deadline = time.monotonic() + max_seconds
    deleted = 0
    while time.monotonic() < deadline:
        with transaction.atomic():
            ids = list(expired.values_list("pk", flat=True)[:batch_size])
            if ids:
                deleted += LicenseValidation.objects.filter(pk__in=ids).delete()[0]
        if len(ids) < batch_size:
            break
    if deleted or dropped:
        message = (
            f"Validation attempts older than {days} days were deleted: {len(dropped)} month(s) dropped whole, "
            f"{deleted} row(s) one by one"
        )
        purged = {"deleted": deleted, "partitions_dropped": dropped, "retention_days": days}
        _job_done("purge_validations", "license.validations_purged", message, **purged)
    return deleted
