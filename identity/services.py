"""Writes for organizations and their members. Seat limits are enforced under a row lock."""

import re
from decimal import Decimal, InvalidOperation
from zoneinfo import available_timezones

from django.db import transaction

from celaest.errors import Conflict, Forbidden, InvalidInput, LimitExceeded

from .models import Organization, User

_ORG_SETTING_KEYS = {"currency", "country", "hourly_rate", "timezone", "minutes_saved_overrides", "billing_address"}


def organization_seats_used(*, organization: Organization) -> int:
    return User.objects.filter(organization=organization, is_active=True).count()


@transaction.atomic
def member_create(
    *,
    organization: Organization,
    actor: User,
    email: str,
    role: str = User.Role.MEMBER,
    first_name: str = "",
    last_name: str = "",
    password: str | None = None,
) -> User:
    """Add a member. The organization row is locked so concurrent additions cannot exceed
    ``max_users`` (which licensing keeps equal to the plan's seat limit)."""
    _check_role_grant(actor=actor, role=role)
    org = Organization.objects.select_for_update().get(pk=organization.pk)
    email = User.objects.normalize_email(email).lower()
    if User.all_objects.filter(email=email).exists():
        raise Conflict("A user with this email already exists.", code="email_taken", details={"email": [email]})
    if organization_seats_used(organization=org) >= org.max_users:
        raise LimitExceeded(
            f"The organization has used all {org.max_users} seats of its plan.",
            code="max_users_reached",
            details={"max_users": org.max_users},
        )
    user = User(organization=org, email=email, role=role, first_name=first_name, last_name=last_name)
    if password:
        user.set_password(password)
    else:
        user.set_unusable_password()  # an invited member sets a password or signs in with Supabase
    user.save()
    return user


def _check_role_grant(*, actor: User, role: str) -> None:
    if role not in User.Role.values:
        raise InvalidInput(f"Unknown role {role!r}.", details={"role": [f"Choose one of {User.Role.values}."]})
    if role == User.Role.OWNER and actor.role != User.Role.OWNER and not actor.is_staff:
        raise Forbidden("Only an owner can grant the owner role.", code="owner_only")


def _check_can_manage(*, actor: User, member: User) -> None:
    if member.role == User.Role.OWNER and actor.role != User.Role.OWNER and not actor.is_staff:
        raise Forbidden("Only an owner can change another owner.", code="owner_only")


def _ensure_another_owner_remains(*, member: User) -> None:
    if member.role != User.Role.OWNER:
        return
    owners = User.objects.select_for_update().filter(
        organization_id=member.organization_id, role=User.Role.OWNER, is_active=True
    )
    if not owners.exclude(pk=member.pk).exists():
        raise Conflict("An organization must keep at least one active owner.", code="last_owner")


@transaction.atomic
def member_update(*, actor: User, member: User, role: str | None = None, is_active: bool | None = None) -> User:
    _check_can_manage(actor=actor, member=member)
    fields = []
    if role is not None and role != member.role:
        _check_role_grant(actor=actor, role=role)
        if role != User.Role.OWNER:
            _ensure_another_owner_remains(member=member)
        member.role = role
        fields.append("role")
    if is_active is not None and is_active != member.is_active:
        if is_active:
            org = Organization.objects.select_for_update().get(pk=member.organization_id)
            if organization_seats_used(organization=org) >= org.max_users:
                raise LimitExceeded("No seat is free to reactivate this member.", code="max_users_reached")
        else:
            if member.pk == actor.pk:
                raise Conflict("You cannot deactivate yourself.", code="cannot_deactivate_self")
            _ensure_another_owner_remains(member=member)
        member.is_active = is_active
        fields.append("is_active")
    if fields:
        member.save(update_fields=[*fields, "updated_at"])
    return member


def member_deactivate(*, actor: User, member: User) -> User:
    return member_update(actor=actor, member=member, is_active=False)


def organization_update(
    *, organization: Organization, name: str | None = None, settings: dict | None = None, actor: User | None = None
):
    before = {"name": organization.name, "settings": dict(organization.settings)}
    fields = []
    if name is not None:
        organization.name = name
        fields.append("name")
    if settings is not None:
        _validate_organization_settings(settings)
        organization.settings = {**organization.settings, **settings}
        fields.append("settings")
    if fields:
        organization.save(update_fields=[*fields, "updated_at"])
        _audit_update(resource=organization, actor=actor, before=before, fields=fields)
    return organization


def _is_amount(value) -> bool:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return False
    return amount.is_finite() and amount >= 0 and not isinstance(value, bool)


def _validate_organization_settings(settings: dict) -> None:
    """The settings other modules read (ROI, tax, billing) must have usable values."""
    errors = [f"Unknown key: {key}" for key in sorted(set(settings) - _ORG_SETTING_KEYS)]
    if "currency" in settings and not re.fullmatch(r"[A-Z]{3}", str(settings["currency"])):
        errors.append("currency: a three-letter ISO 4217 code such as EUR.")
    if "country" in settings and not re.fullmatch(r"[A-Z]{2}", str(settings["country"])):
        errors.append("country: a two-letter ISO 3166 code such as ES.")
    if "hourly_rate" in settings and not _is_amount(settings["hourly_rate"]):
        errors.append('hourly_rate: a non-negative amount such as "45.00".')
    if "timezone" in settings and settings["timezone"] not in available_timezones():
        errors.append("timezone: an IANA time zone such as Europe/Madrid.")
    overrides = settings.get("minutes_saved_overrides", {})
    if not isinstance(overrides, dict) or not all(_is_amount(v) for v in overrides.values()):
        errors.append("minutes_saved_overrides: an object of prompt slugs or categories to minutes (>= 0).")
    if errors:
        raise InvalidInput("Invalid organization settings.", details={"settings": errors})


def profile_update(*, user: User, **changes) -> User:
    allowed = {"first_name", "last_name", "preferences"}
    fields = [name for name in changes if name in allowed]
    before = {name: getattr(user, name) for name in fields}
    for name in fields:
        setattr(user, name, changes[name])
    if fields:
        user.save(update_fields=[*fields, "updated_at"])
        _audit_update(resource=user, actor=user, before=before, fields=fields)
    return user


def _audit_update(*, resource, actor: User | None, before: dict, fields: list[str]) -> None:
    from audit.models import AuditLog
    from audit.services import audit_record

    changes = {
        name: [before[name], getattr(resource, name)] for name in fields if before[name] != getattr(resource, name)
    }
    if changes:
        audit_record(action=AuditLog.Action.UPDATE, resource=resource, user=actor, changes=changes)
