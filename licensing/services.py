"""Writes for licensing: issuing licenses and their lifecycle (suspend, reinstate, renew, revoke,
expire). Every transition locks the license row, checks that the current status allows it, is
audited and emits a ``license.*`` event inside the same transaction."""

import secrets
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit.models import AuditLog
from audit.services import audit_record, audit_record_many
from celaest import crypto
from celaest.errors import Conflict, InvalidInput, NotFound
from identity.models import Organization, User
from settings_app.events import emit_event, emit_events

from .models import BillingState, License, LicenseToken, SubscriptionPlan
from .selectors import license_effective_limits

# Crockford base32: no I, L, O, U, so keys survive being read aloud or typed by hand.
_KEY_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_KEY_GROUPS = 6
_KEY_GROUP_LENGTH = 5  # 6 × 5 characters × 5 bits = 150 random bits
LICENSE_KEY_PREFIX = "CEL"


def license_key_generate() -> str:
    """A fresh key such as ``CEL-7K3QX-9MZ2D-4T8VW-0HBNC-Q5R1E-JA6YP``: 150 bits of randomness
    in groups of five characters."""
    characters = [secrets.choice(_KEY_ALPHABET) for _ in range(_KEY_GROUPS * _KEY_GROUP_LENGTH)]
    groups = ["".join(characters[i : i + _KEY_GROUP_LENGTH]) for i in range(0, len(characters), _KEY_GROUP_LENGTH)]
    return "-".join([LICENSE_KEY_PREFIX, *groups])


def license_key_normalize(raw: str) -> str:
    """Accept a key as a person may type it: any case, spaces, ambiguous letters for digits."""
    cleaned = raw.strip().upper().replace(" ", "")
    return cleaned.translate(str.maketrans({"O": "0", "I": "1", "L": "1"})).replace("CE1-", "CEL-", 1)


def license_event_data(license: License) -> dict:
    """The event payload describing a license (never secrets)."""
    return {
        "id": str(license.pk),
        "organization": str(license.organization_id),
        "plan": license.plan.code,
        "status": license.status,
        "expires_at": license.expires_at.isoformat() if license.expires_at else None,
    }


@transaction.atomic
def license_issue(
    *,
    organization: Organization,
    plan: SubscriptionPlan,
    status: str = License.Status.ACTIVE,
    expires_in_days: int | None = None,
    custom_limits: dict | None = None,
    actor: User | None = None,
    source: str = "system",
    expires_at: datetime | None = None,
) -> License:
    """Issue a license of ``plan`` to ``organization``, audited, with a ``license.created`` event.

    The organization's seat limit follows the plan (``max_users``), so member management can
    enforce it with a row lock on the organization alone.
    """
    if status not in (License.Status.ACTIVE, License.Status.TRIAL):
        raise InvalidInput("A new license is active or trial.", details={"status": [status]})
    if expires_in_days is not None and expires_in_days < 1:
        raise InvalidInput("expires_in_days must be at least 1.", details={"expires_in_days": ["Must be >= 1."]})
    if expires_in_days is not None and expires_at is not None:
        raise InvalidInput("Give expires_in_days or expires_at, not both.")
    if expires_in_days:
        expires_at = timezone.now() + timedelta(days=expires_in_days)
    license = License.objects.create(
        organization=organization,
        plan=plan,
        license_key=license_key_generate(),
        status=status,
        expires_at=expires_at,
        custom_limits=custom_limits or {},
    )
    seats = license_effective_limits(license=license).get("max_users")
    if isinstance(seats, int) and seats > 0:
        Organization.objects.filter(pk=organization.pk, max_users__lt=seats).update(max_users=seats)
    audit_record(
        action=AuditLog.Action.CREATE,
        resource=license,
        user=actor,
        organization=organization,
        changes={"plan": [None, plan.code], "status": [None, status]},
        source=source,
    )
    emit_event("license.created", organization=organization, payload=license_event_data(license))
    return license


# --- lifecycle ----------------------------------------------------------------------------------

_LIVE = (License.Status.ACTIVE, License.Status.TRIAL)


class LicenseStateConflict(Conflict):
    """The license's current status does not allow the requested transition (HTTP 409)."""


def _locked(license: License) -> License:
    """The license row, locked for the rest of the transaction (fresh from the database)."""
    try:
        return License.objects.select_for_update().get(pk=license.pk)
    except License.DoesNotExist as exc:
        raise NotFound("No such license.", code="license_not_found") from exc


def _refuse(license: License, action: str, code: str) -> LicenseStateConflict:
    return LicenseStateConflict(
        f"Cannot {action} a license that is {license.status}.",
        code=code,
        details={"status": license.status, "action": action},
    )


def _transition(
    license: License,
    *,
    event: str,
    changes: dict,
    actor: User | None,
    source: str,
    ip_address: str | None,
) -> License:
    """Save ``changes`` on the locked ``license``, audit the before/after and emit ``event``."""
    before = {field: getattr(license, field) for field in changes}
    for field, value in changes.items():
        setattr(license, field, value)
    license.save(update_fields=[*changes, "updated_at"])
    audit_record(
        action=AuditLog.Action.UPDATE,
        resource=license,
        user=actor,
        changes={field: [_plain(before[field]), _plain(value)] for field, value in changes.items()},
        ip_address=ip_address,
        source=source,
    )
    emit_event(event, organization=license.organization, payload=license_event_data(license))
    return license


def _plain(value):
    return value.isoformat() if isinstance(value, datetime) else value


@transaction.atomic
def license_suspend(
    *, license: License, reason: str = "", actor: User | None = None, source: str = "system", ip_address=None
) -> License:
    """Suspend a live (active or trial) license: validation answers SUSPENDED until reinstated."""
    license = _locked(license)
    if license.status == License.Status.SUSPENDED:
        raise _refuse(license, "suspend", "license_already_suspended")
    if license.status not in _LIVE:
        raise _refuse(license, "suspend", f"license_{license.status}")
    changes = {
        "status": License.Status.SUSPENDED,
        "status_before_suspension": license.status,
        "suspended_at": timezone.now(),
        "status_reason": reason[:255],
    }
    return _transition(
        license, event="license.suspended", changes=changes, actor=actor, source=source, ip_address=ip_address
    )


@transaction.atomic
def license_reinstate(
    *, license: License, actor: User | None = None, source: str = "system", ip_address=None
) -> License:
    """Lift a suspension: the license returns to the status it had (active or trial)."""
    license = _locked(license)
    if license.status != License.Status.SUSPENDED:
        raise _refuse(license, "reinstate", "license_not_suspended")
    changes = {
        "status": license.status_before_suspension or License.Status.ACTIVE,
        "status_before_suspension": "",
        "suspended_at": None,
        "status_reason": "",
    }
    return _transition(
        license, event="license.reinstated", changes=changes, actor=actor, source=source, ip_address=ip_address
    )


@transaction.atomic
def license_renew(
    *,
    license: License,
    days: int | None = None,
    expires_at: datetime | None = None,
    actor: User | None = None,
    source: str = "system",
    ip_address=None,
) -> License:
    """Extend a license: by ``days`` from its current expiry (or from now, if that has passed),
    or to an explicit later ``expires_at``. An expired license becomes active again; a suspended
    one stays suspended. A revoked license cannot be renewed."""
    if (days is None) == (expires_at is None):
        raise InvalidInput("Give either days or expires_at.", details={"days": ["Give days or expires_at."]})
    if days is not None and days < 1:
        raise InvalidInput("days must be at least 1.", details={"days": ["Must be >= 1."]})
    license = _locked(license)
    if license.status == License.Status.REVOKED:
        raise _refuse(license, "renew", "license_revoked")
    now = timezone.now()
    if days is not None:
        start = license.expires_at if license.expires_at and license.expires_at > now else now
        expires_at = start + timedelta(days=days)
    if expires_at <= now:
        raise InvalidInput("The new expiry must be in the future.", details={"expires_at": ["Must be in the future."]})
    return _transition(
        license,
        event="license.renewed",
        changes=_renewal(license, expires_at),
        actor=actor,
        source=source,
        ip_address=ip_address,
    )


@transaction.atomic
def license_revoke(
    *, license: License, reason: str = "", actor: User | None = None, source: str = "system", ip_address=None
) -> License:
    """Revoke a license for good: validation answers REVOKED; it cannot be reinstated or renewed."""
    license = _locked(license)
    if license.status == License.Status.REVOKED:
        raise _refuse(license, "revoke", "license_already_revoked")
    changes = {"status": License.Status.REVOKED, "revoked_at": timezone.now(), "status_reason": reason[:255]}
    return _transition(
        license, event="license.revoked", changes=changes, actor=actor, source=source, ip_address=ip_address
    )


@transaction.atomic
def license_expire(*, license: License, now: datetime | None = None) -> License:
    """Mark a live license whose ``expires_at`` has passed as expired."""
    now = now or timezone.now()
    license = _locked(license)
    if license.status not in _LIVE or license.expires_at is None or license.expires_at > now:
        raise _refuse(license, "expire", "license_not_due")
    changes = {"status": License.Status.EXPIRED, "status_reason": "Expired"}
    return _transition(license, event="license.expired", changes=changes, actor=None, source="system", ip_address=None)


@transaction.atomic
def license_trial_convert(
    *, license: License, expires_at: datetime, actor: User | None = None, source: str = "billing", ip_address=None
) -> License:
    """A trial converts to a paid license (its subscription's first paid period began): active
    until ``expires_at``, announced by one ``license.trial_converted`` event. Only a trial
    converts."""
    license = _locked(license)
    if license.status != License.Status.TRIAL:
        raise _refuse(license, "convert", "license_not_trial")
    return _transition(
        license,
        event="license.trial_converted",
        changes=_trial_conversion(expires_at),
        actor=actor,
        source=source,
        ip_address=ip_address,
    )


def _trial_conversion(expires_at: datetime) -> dict:
    return {"status": License.Status.ACTIVE, "expires_at": expires_at, "status_reason": ""}


def _renewal(license: License, expires_at: datetime) -> dict:
    changes = {"expires_at": expires_at}
    if license.status == License.Status.EXPIRED:
        changes.update(status=License.Status.ACTIVE, status_reason="")
    return changes


def license_extension(*, license: License, until: datetime, now: datetime) -> str | None:
    """What keeping ``license`` valid at least until ``until`` takes (billing's entitlement
    follows what is paid): ``"trial_converted"`` for a trial whose time ended, ``"renewed"`` for
    an earlier expiry (an expired license becomes active again), None when nothing changes (a
    revoked license, an ``until`` already past or not later than the expiry). The one rule
    for a license alone (``license_trial_convert``, ``license_renew``) and a batch
    (``licenses_keep_valid``)."""
    if until <= now or license.status == License.Status.REVOKED:
        return None
    if license.status == License.Status.TRIAL and license.expires_at is not None and license.expires_at <= now:
        return "trial_converted"
    if license.expires_at is None or license.expires_at < until or license.status == License.Status.EXPIRED:
        return "renewed"
    return None


@transaction.atomic
def licenses_keep_valid(*, until_by_license: dict, source: str = "billing") -> int:
    """``license_extension`` for many licenses at once (a renewal batch): the licenses locked in
    one statement, updated with one statement per distinct change, audited and announced in
    bulk, exactly as ``license_trial_convert`` and ``license_renew`` would one by one. Returns
    how many changed."""
    now = timezone.now()
    licenses = (
        License.objects.select_for_update()
        .prefetch_related("plan")
        .filter(pk__in=list(until_by_license))
        .order_by("pk")
    )
    by_change: dict[tuple, list[License]] = {}
    audits, events = [], {"license.trial_converted": [], "license.renewed": []}
    for license in licenses:
        until = until_by_license[license.pk]
        extension = license_extension(license=license, until=until, now=now)
        if extension is None:
            continue
        changes = _trial_conversion(until) if extension == "trial_converted" else _renewal(license, until)
        audits.append(
            {
                "action": AuditLog.Action.UPDATE,
                "resource": license,
                "organization": license.organization_id,
                "changes": {name: [_plain(getattr(license, name)), _plain(value)] for name, value in changes.items()},
                "source": source,
            }
        )
        for field, value in changes.items():
            setattr(license, field, value)
        by_change.setdefault(tuple(sorted(changes.items())), []).append(license)
        events[f"license.{extension}"].append(license)
    for changes, changed in by_change.items():
        License.objects.filter(pk__in=[license.pk for license in changed]).update(**dict(changes), updated_at=now)
    audit_record_many(records=audits)
    for event, changed in events.items():
        emit_events(event, events=[(license.organization_id, license_event_data(license)) for license in changed])
    return len(audits)


def license_expire_due(*, now: datetime | None = None, batch_size: int = 500) -> int:
    """Expire every live license past its expiry, each in its own short transaction (so one
    slow row never holds the rest); licenses another transaction changed meanwhile are skipped.
    Returns how many were expired."""
    now = now or timezone.now()
    due = License.objects.filter(status__in=_LIVE, expires_at__lte=now).order_by("expires_at")
    expired = 0
    for pk in due.values_list("pk", flat=True).iterator(chunk_size=batch_size):
        try:
            license_expire(license=License(pk=pk), now=now)
        except (LicenseStateConflict, NotFound):
            continue  # changed by someone else since the scan
        expired += 1
    return expired


# --- machine policy, entitlements and billing state -------------------------------------------------

#: what ``license_policy_set`` may change: the plan's machine policy overridden for one license
POLICY_FIELDS = ("machine_scheme", "overage_allowance", "heartbeat_window_seconds", "entitlements")


@transaction.atomic
def license_policy_set(
    *, license: License, changes: dict, actor: User | None = None, source: str = "system", ip_address=None
) -> License:
    """Override the plan's machine policy for ``license`` (``POLICY_FIELDS``; null or blank goes
    back to the plan's), audited. Validation sees the change at once (the license's snapshots are
    retired by the save)."""
    unknown = set(changes) - set(POLICY_FIELDS)
    if unknown:
        raise InvalidInput("Unknown policy fields.", details={field: ["Not a policy field."] for field in unknown})
    entitlements = changes.get("entitlements", [])
    if not isinstance(entitlements, list) or not all(isinstance(code, str) and code for code in entitlements):
        raise InvalidInput("entitlements is a list of codes.", details={"entitlements": ["Expected a list of codes."]})
    license = _locked(license)
    before = {field: getattr(license, field) for field in changes}
    for field, value in changes.items():
        setattr(license, field, value)
    license.full_clean(exclude=[field for field in _all_fields(license) if field not in changes])
    license.save(update_fields=[*changes, "updated_at"])
    audit_record(
        action=AuditLog.Action.UPDATE,
        resource=license,
        user=actor,
        changes={field: [before[field], changes[field]] for field in changes},
        ip_address=ip_address,
        source=source,
    )
    return license


def _all_fields(license: License) -> list[str]:
    return [field.name for field in license._meta.concrete_fields]


#: how the audit trail writes a custom limit that is not set (the plan's applies); null is "unlimited"
PLANS_LIMIT = "(plan's)"


@transaction.atomic
def license_custom_limits_set(
    *, license: License, custom_limits: dict, actor: User | None = None, source: str = "system", ip_address=None
) -> License:
    """Replace ``license``'s custom limits (each over its plan's, ``license_effective_limits``; a
    key left out goes back to the plan's), audited with the limits that changed. Validation and
    the AI budget see them at once (the save retires the license's snapshots)."""
    if not isinstance(custom_limits, dict):
        raise InvalidInput("Custom limits are an object.", details={"custom_limits": ["Expected an object."]})
    license = _locked(license)
    before = license.custom_limits or {}
    changed = sorted(key for key in {*before, *custom_limits} if before.get(key, ...) != custom_limits.get(key, ...))
    if not changed:
        return license
    license.custom_limits = custom_limits
    license.save(update_fields=["custom_limits", "updated_at"])
    audit_record(
        action=AuditLog.Action.UPDATE,
        resource=license,
        user=actor,
        changes={
            f"custom_limits.{key}": [before.get(key, PLANS_LIMIT), custom_limits.get(key, PLANS_LIMIT)]
            for key in changed
        },
        ip_address=ip_address,
        source=source,
    )
    return license


@transaction.atomic
def license_change_plan(*, license: License, plan: SubscriptionPlan, source: str = "billing") -> License:
    """Move the license to ``plan`` (its subscription changed plan): its limits, policy and
    entitlements follow the plan from now on. Idempotent; audited when it changes."""
    license = _locked(license)
    if license.plan_id != plan.pk:
        before = license.plan.code if license.plan_id else None
        license.plan = plan
        license.save(update_fields=["plan", "updated_at"])
        audit_record(
            action=AuditLog.Action.UPDATE, resource=license, changes={"plan": [before, plan.code]}, source=source
        )
    return license


def license_billing_state_set(*, license: License, state: str, source: str = "billing") -> License:
    """What billing says of the license's subscription (``BillingState``): a past-due license stays
    usable, and validation answers it with the PAYMENT_PAST_DUE warning. Idempotent; audited when
    it changes."""
    if state not in BillingState.values:
        raise InvalidInput("Unknown billing state.", details={"state": [f"Use one of {BillingState.values}."]})
    license = _locked(license)
    if license.billing_state != state:
        before, license.billing_state = license.billing_state, state
        license.save(update_fields=["billing_state", "updated_at"])
        audit_record(
            action=AuditLog.Action.UPDATE,
            resource=license,
            changes={"billing_state": [before, state]},
            source=source,
        )
    return license


# --- license tokens -----------------------------------------------------------------------------

_TOKEN_DISPLAY_LENGTH = 12


@transaction.atomic
def license_token_create(
    *,
    license: License,
    name: str,
    actor: User | None = None,
    expires_in_days: int | None = None,
    source: str = "system",
    ip_address=None,
) -> tuple[LicenseToken, str]:
    """A new token scoped to ``license``; returns it and the token itself, which is never stored
    (only its hash) and cannot be shown again."""
    if expires_in_days is not None and expires_in_days < 1:
        raise InvalidInput("expires_in_days must be at least 1.", details={"expires_in_days": ["Must be >= 1."]})
    raw = LicenseToken.PREFIX + secrets.token_urlsafe(32)
    token = LicenseToken.objects.create(
        organization_id=license.organization_id,
        license=license,
        name=name[:100],
        token_hash=crypto.hash_secret(raw),
        token_prefix=raw[:_TOKEN_DISPLAY_LENGTH],
        created_by=actor,
        expires_at=timezone.now() + timedelta(days=expires_in_days) if expires_in_days else None,
    )
    audit_record(
        action=AuditLog.Action.CREATE,
        resource=token,
        user=actor,
        changes={"license": [None, str(license.pk)], "name": [None, token.name]},
        ip_address=ip_address,
        source=source,
    )
    return token, raw


@transaction.atomic
def license_token_revoke(
    *, token: LicenseToken, actor: User | None = None, source: str = "system", ip_address=None
) -> LicenseToken:
    """Revoke ``token`` for good (idempotent)."""
    token = LicenseToken.objects.select_for_update().get(pk=token.pk)
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at", "updated_at"])
        audit_record(
            action=AuditLog.Action.UPDATE,
            resource=token,
            user=actor,
            changes={"revoked_at": [None, token.revoked_at.isoformat()]},
            ip_address=ip_address,
            source=source,
        )
    return token


#: how stale a token's ``last_used_at`` may get before a use writes it again
_TOKEN_USE_STEP = timedelta(minutes=1)


def license_token_record_use(*, token: LicenseToken) -> None:
    """Note that ``token`` was used (at most one write a minute per token)."""
    now = timezone.now()
    LicenseToken.objects.filter(pk=token.pk).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - _TOKEN_USE_STEP)
    ).update(last_used_at=now)
