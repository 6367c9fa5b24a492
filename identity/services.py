"""Writes for organizations and their members. Seat limits are enforced under a row lock.

Identity is the bottom app: the audit trail depends on it, so its changes reach the trail through
``celaest.hooks.change_record`` (audit connects to it), with the action names of ``AuditLog.Action``.
"""

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from zoneinfo import available_timezones

from django.conf import settings as django_settings
from django.contrib.auth.password_validation import validate_password
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from celaest.errors import Conflict, Forbidden, InvalidInput, LimitExceeded
from celaest.hooks import change_record

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
    """Add a member's account at once (staff tools, commands, demo data: callers who may see every
    account). Tenants invite instead (``member_invite``). The organization row is locked so
    concurrent additions cannot exceed ``max_users`` (which licensing keeps equal to the plan's
    seat limit)."""
    _check_role_grant(actor=actor, role=role)
    org = Organization.objects.select_for_update().get(pk=organization.pk)
    email = User.objects.normalize_email(email).lower()
    if User.all_objects.filter(email=email).exists():
        raise Conflict("A user with this email already exists.", code="email_taken", details={"email": [email]})
    _check_seat_free(org)
    user = User(organization=org, email=email, role=role, first_name=first_name, last_name=last_name)
    if password:
        user.set_password(password)
    else:
        user.set_unusable_password()  # an invited member sets a password or signs in with Supabase
    user.save()
    return user


# --- invitations -----------------------------------------------------------------------------
# A tenant adds a member by inviting an address. The answer must not depend on whether the
# address already has an account in another organization (users_profile.email is unique across
# the platform): answering 409 email_taken there and 201 for an unknown address told one tenant
# who uses the platform elsewhere. So the invitation looks at this organization's users only,
# creates nothing, and is e-mailed to the address; the account is made when its holder accepts.
# Only the holder of the address learns that it is taken (they own it), and no account is moved
# or linked between organizations.

_INVITATION_SALT = "identity.member-invitation"
#: how long an invitation link can be accepted
INVITATION_MAX_AGE = timedelta(days=7)


@dataclass(frozen=True)
class Invitation:
    organization: Organization
    email: str
    role: str
    expires_at: datetime


def _check_seat_free(org: Organization) -> None:
    if organization_seats_used(organization=org) >= org.max_users:
        raise LimitExceeded(
            f"The organization has used all {org.max_users} seats of its plan.",
            code="max_users_reached",
            details={"max_users": org.max_users},
        )


@transaction.atomic
def member_invite(
    *,
    organization: Organization,
    actor: User,
    email: str,
    role: str = User.Role.MEMBER,
    first_name: str = "",
    last_name: str = "",
) -> Invitation:
    """Invite ``email`` to join ``organization`` with ``role``: a signed invitation, good for
    ``INVITATION_MAX_AGE``, e-mailed once the transaction commits. Refused only for an address
    that is already this organization's member (409 ``already_member``) or when no seat is free;
    whatever else is true of the address, the answer is the same."""
    _check_role_grant(actor=actor, role=role)
    org = Organization.objects.select_for_update().get(pk=organization.pk)
    email = User.objects.normalize_email(email).lower()
    if User.all_objects.filter(organization=org, email=email).exists():
        raise Conflict(
            "This address is already a member of your organization.",
            code="already_member",
            details={"email": [email]},
        )
    _check_seat_free(org)
    claims = {"o": str(org.pk), "e": email, "r": role, "f": first_name, "l": last_name, "by": str(actor.pk)}
    token = signing.dumps(claims, salt=_INVITATION_SALT)
    invited = {"email": email, "role": role}
    change_record(action="member.invited", resource=org, user=actor, changes=invited)
    transaction.on_commit(lambda: _invitation_mail(organization=org, inviter=actor, email=email, token=token))
    return Invitation(organization=org, email=email, role=role, expires_at=timezone.now() + INVITATION_MAX_AGE)


def _invitation_mail(*, organization: Organization, inviter: User, email: str, token: str) -> None:
    days = INVITATION_MAX_AGE.days
    send_mail(
        subject=f"You are invited to {organization.name} on CELAEST",
        message=(
            f"{inviter.get_full_name() or inviter.email} invites you to join {organization.name} on CELAEST.\n\n"
            f"To accept within {days} days, send this invitation to POST /api/v1/invitations/accept "
            f'as {{"token": "<invitation>", "password": "<your new password>"}}:\n\n{token}\n'
        ),
        from_email=django_settings.DEFAULT_FROM_EMAIL,
        recipient_list=[email],
    )


@transaction.atomic
def member_invitation_accept(*, token: str, password: str | None = None) -> User:
    """Create the invited member's account from a valid, unexpired invitation. The caller holds
    the invitation sent to the address, so they may learn that the address has an account
    already (409 ``email_in_use``, or ``already_member`` if it is this organization's); their
    account is not moved or linked. Seats are checked again: an invitation does not hold one."""
    try:
        claims = signing.loads(token, salt=_INVITATION_SALT, max_age=INVITATION_MAX_AGE)
    except signing.SignatureExpired as exc:
        raise InvalidInput("This invitation has expired; ask for a new one.", code="invitation_expired") from exc
    except signing.BadSignature as exc:
        raise InvalidInput("This invitation is not valid.", code="invitation_invalid") from exc
    org = Organization.objects.select_for_update().filter(pk=claims["o"]).first()
    if org is None:
        raise InvalidInput("This invitation is not valid.", code="invitation_invalid")
    email = claims["e"]
    existing = User.all_objects.filter(email=email).first()
    if existing is not None:
        if existing.organization_id == org.pk:
            raise Conflict("You are already a member of this organization.", code="already_member")
        raise Conflict(
            "This address has a CELAEST account in another organization; use another address.",
            code="email_in_use",
        )
    _check_seat_free(org)
    user = User(organization=org, email=email, role=claims["r"], first_name=claims["f"], last_name=claims["l"])
    if password:
        try:
            validate_password(password, user)
        except ValidationError as exc:
            raise InvalidInput("The password is too weak.", details={"password": exc.messages}) from exc
        user.set_password(password)
    else:
        user.set_unusable_password()  # they sign in with Supabase, or reset a password later
    user.save()
    changes = {"email": [None, email], "role": [None, user.role], "invited_by": claims["by"]}
    change_record(action="create", resource=user, user=user, organization=org, changes=changes)
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
    changes = {
        name: [before[name], getattr(resource, name)] for name in fields if before[name] != getattr(resource, name)
    }
    if changes:
        change_record(action="update", resource=resource, user=actor, changes=changes)
