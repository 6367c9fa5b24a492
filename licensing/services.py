"""Writes for licensing: issuing licenses (the lifecycle transitions build on this module)."""

import secrets
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from audit.models import AuditLog
from audit.services import audit_record
from celaest.errors import InvalidInput
from identity.models import Organization, User
from settings_app.events import emit_event

from .models import License, SubscriptionPlan
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
) -> License:
    """Issue a license of ``plan`` to ``organization``, audited, with a ``license.created`` event.

    The organization's seat limit follows the plan (``max_users``), so member management can
    enforce it with a row lock on the organization alone.
    """
    if status not in (License.Status.ACTIVE, License.Status.TRIAL):
        raise InvalidInput("A new license is active or trial.", details={"status": [status]})
    if expires_in_days is not None and expires_in_days < 1:
        raise InvalidInput("expires_in_days must be at least 1.", details={"expires_in_days": ["Must be >= 1."]})
    license = License.objects.create(
        organization=organization,
        plan=plan,
        license_key=license_key_generate(),
        status=status,
        expires_at=timezone.now() + timedelta(days=expires_in_days) if expires_in_days else None,
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
