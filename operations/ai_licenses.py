"""Which license pays for a user API key's AI gateway calls, chosen explicitly.

In order: the license the key is bound to (``ApiKeyLicense``), else the organization's designated
AI license (``OrganizationAILicense``), both set by the organization's owners and admins or by
staff. A bound or designated license that is not live refuses the call (402): another license is
never charged instead of the one chosen. With neither, the organization's live paid (active)
license, newest first; a trial only when no paid license is live, so a trial is never picked
silently over a paid license. The choice is read from this process's copies (``ReadCache``), one
cache round trip per call, retired by any change to the bindings or licenses.
"""

from django.db import transaction
from django.utils import timezone

from audit.models import AuditLog
from audit.services import audit_record
from celaest.errors import InvalidInput, PaymentRequired
from celaest.readcache import ReadCache
from identity.models import Organization, User
from licensing.models import License, SubscriptionPlan
from settings_app.models import UserApiKey

from .models import ApiKeyLicense, OrganizationAILicense

LIVE_STATUSES = (License.Status.ACTIVE, License.Status.TRIAL)

#: per (organization, key): the key's bound license, the designated one, the live licenses
_choices = ReadCache("ai-paying-license").watch(
    ApiKeyLicense, OrganizationAILicense, License, SubscriptionPlan, unseen_fields=("ai_requests_used",)
)


def license_is_live(license: License, now=None) -> bool:
    now = now or timezone.now()
    return (
        license.deleted_at is None
        and license.status in LIVE_STATUSES
        and (license.expires_at is None or license.expires_at > now)
    )


def _load_choices(organization_id, api_key_id) -> tuple:
    bound = None
    if api_key_id is not None:
        binding = ApiKeyLicense.objects.select_related("license__plan").filter(api_key_id=api_key_id).first()
        bound = binding.license if binding is not None else None
    designation = (
        OrganizationAILicense.objects.select_related("license__plan").filter(organization_id=organization_id).first()
    )
    live = list(
        License.objects.filter(organization_id=organization_id, status__in=LIVE_STATUSES)
        .select_related("plan")
        .order_by("-issued_at")
    )
    return bound, designation.license if designation is not None else None, live


def paying_license(*, user: User, api_key: UserApiKey | None) -> License:
    """The license that pays for ``user``'s AI gateway call made with ``api_key``. Raises
    ``PaymentRequired`` (402): ``license_inactive`` when the bound or designated license is not
    live, ``no_active_license`` when the organization has no live license. Shared by the
    process's threads: read the license, don't change it."""
    organization_id = user.organization_id
    if organization_id is None:
        raise PaymentRequired("This organization has no active license.", code="no_active_license")
    api_key_id = api_key.pk if api_key is not None else None
    bound, designated, live = _choices.get(
        (organization_id, api_key_id), lambda: _load_choices(organization_id, api_key_id)
    )
    now = timezone.now()
    for chosen, by in ((bound, "api_key"), (designated, "organization")):
        if chosen is None:
            continue
        if chosen.organization_id != organization_id or not license_is_live(chosen, now):
            raise PaymentRequired(
                "The license chosen to pay for this AI work is not active: choose another.",
                code="license_inactive",
                details={"license": str(chosen.pk), "chosen_by": by, "status": chosen.status},
            )
        return chosen
    usable = [item for item in live if license_is_live(item, now)]
    paid = [item for item in usable if item.status == License.Status.ACTIVE]
    found = (paid or usable or [None])[0]
    if found is None:
        raise PaymentRequired("This organization has no active license.", code="no_active_license")
    return found


def license_check_choosable(license: License, organization_id) -> None:
    """Refuse (400) a license that cannot pay for ``organization_id``'s AI work: another
    organization's, or one that is not live."""
    if license.organization_id != organization_id:
        raise InvalidInput(
            "The license is not one of this organization's.",
            code="license_not_in_organization",
            details={"license": ["Not a license of this organization."]},
        )
    if not license_is_live(license):
        raise InvalidInput(
            "Only an active or trial license can pay for AI work.",
            code="license_inactive",
            details={"license": [f"The license is {license.status}."]},
        )


def _license_choice_set(model, *, owner: dict, license: License | None, organization_id, defaults=None):
    """Make ``license`` (of ``organization_id``) the one of ``model``'s row for ``owner``, or remove
    the row (None), under the row's lock. Returns the row (or None) and the license ids before
    and after, as strings (None: none)."""
    current = model.objects.select_for_update().filter(**owner).first()
    before = str(current.license_id) if current is not None else None
    if license is None:
        if current is not None:
            current.delete()
        return None, before, None
    license_check_choosable(license, organization_id)
    choice, _ = model.objects.update_or_create(**owner, defaults={"license": license, **(defaults or {})})
    return choice, before, str(license.pk)


@transaction.atomic
def ai_license_designate(*, organization: Organization, license: License | None, actor: User | None = None):
    """Make ``license`` the one that pays for the organization's AI work made with keys bound to
    no license (None: no designation, the automatic choice). Returns the designation or None."""
    designation, before, after = _license_choice_set(
        OrganizationAILicense, owner={"organization": organization}, license=license, organization_id=organization.pk
    )
    if before != after:
        audit_record(
            action=AuditLog.Action.UPDATE,
            resource=organization,
            user=actor,
            changes={"ai_license": [before, after]},
        )
    return designation


@transaction.atomic
def api_key_license_bind(*, api_key: UserApiKey, license: License | None, actor: User | None = None):
    """Bind ``api_key`` to ``license`` of its user's organization (None: unbind, the designated
    license pays). Returns the binding or None."""
    organization_id = api_key.user.organization_id
    if organization_id is None:
        raise InvalidInput("Only keys of an organization's members can be bound to a license.", code="no_organization")
    binding, before, after = _license_choice_set(
        ApiKeyLicense,
        owner={"api_key": api_key},
        license=license,
        organization_id=organization_id,
        defaults={"organization_id": organization_id},
    )
    if before != after:
        audit_record(
            action=AuditLog.Action.UPDATE,
            resource=api_key,
            organization=api_key.user.organization,
            user=actor,
            changes={"paying_license": [before, after]},
        )
    return binding
