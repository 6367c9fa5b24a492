"""Subscriptions: an organization subscribes to a plan, monthly or yearly, optionally starting
with the plan's trial. The license is the entitlement: it is issued through
``licensing.services`` when the subscription starts and follows the billing state (extended when
a period is paid, suspended after a failed renewal's grace period, reinstated on payment).

A subscription without a trial is ``incomplete`` until its first invoice is paid; its license
is issued expired, so nothing is usable before the money arrives.
"""

from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.models import AuditLog
from audit.services import audit_record
from billing.models import Invoice, PaymentGateway, PaymentMethod, Subscription
from billing.periods import organization_zone, period_bounds
from celaest.errors import Conflict, InvalidInput
from identity.models import Organization, User
from licensing.models import License, SubscriptionPlan
from licensing.services import license_issue
from settings_app.events import emit_event

from .catalogue import coupon_redeem
from .event_data import subscription_event_data
from .subscription_invoices import LIVE_STATUSES, plan_terms, subscription_invoice_issue


def _active_gateway(code: str) -> PaymentGateway:
    gateway = PaymentGateway.objects.filter(code=code, status=PaymentGateway.Status.ACTIVE).first()
    if gateway is None:
        raise InvalidInput("No active payment gateway with this code.", details={"gateway": ["Unknown or inactive."]})
    return gateway


def _payment_method_for(*, organization: Organization, gateway: PaymentGateway, chosen: PaymentMethod | None):
    """The method a card gateway charges off-session: the one chosen, else the organization's default."""
    if chosen is not None and chosen.organization_id != organization.pk:
        raise InvalidInput("Unknown payment method.", details={"payment_method": ["Unknown."]})
    method = chosen or PaymentMethod.objects.filter(organization=organization, is_default=True).first()
    if gateway.provider == PaymentGateway.Provider.STRIPE and (method is None or not method.gateway_token):
        raise InvalidInput(
            "Card subscriptions need a saved default payment method.",
            code="payment_method_required",
            details={"payment_method": ["Save a card first, or choose bank transfer."]},
        )
    return method


def subscription_create(
    *,
    organization: Organization,
    user: User,
    plan: SubscriptionPlan,
    interval: str,
    gateway_code: str,
    payment_method: PaymentMethod | None = None,
    coupon_code: str = "",
    with_trial: bool = True,
    actor: User | None = None,
    source: str = "system",
    ip_address: str | None = None,
) -> Subscription:
    """Subscribe ``organization`` to ``plan``; the first invoice (no trial) is issued in the same
    transaction and collected by the caller afterwards (``subscription_first_collect``). A second
    live subscription of one organization is a 409, even when both requests race."""
    try:
        return _subscription_create(
            organization=organization,
            user=user,
            plan=plan,
            interval=interval,
            gateway_code=gateway_code,
            payment_method=payment_method,
            coupon_code=coupon_code,
            with_trial=with_trial,
            actor=actor,
            source=source,
            ip_address=ip_address,
        )
    except IntegrityError as exc:
        raise Conflict("This organization already has a subscription.", code="already_subscribed") from exc


@transaction.atomic
def _subscription_create(
    *,
    organization,
    user,
    plan,
    interval,
    gateway_code,
    payment_method,
    coupon_code,
    with_trial,
    actor,
    source,
    ip_address,
) -> Subscription:
    if interval not in Subscription.Interval.values:
        raise InvalidInput("The interval is month or year.", details={"interval": ["Not month or year."]})
    if not plan.is_active:
        raise InvalidInput("This plan is not offered.", details={"plan": ["Inactive."]})
    if user.organization_id != organization.pk:
        raise InvalidInput("The subscriber must belong to the organization.", details={"user": ["Not a member."]})
    if Subscription.objects.filter(organization=organization, status__in=LIVE_STATUSES).exists():
        raise Conflict("This organization already has a subscription.", code="already_subscribed")
    gateway = _active_gateway(gateway_code)
    method = _payment_method_for(organization=organization, gateway=gateway, chosen=payment_method)
    now = timezone.now()
    coupon = coupon_redeem(code=coupon_code, currency=plan.currency, now=now) if coupon_code else None
    trial_days = plan_terms(plan).trial_days if with_trial else 0
    if trial_days:
        # A trial license until the trial's end; the first renewal converts it to paid.
        trial_end = now + timedelta(days=trial_days)
        status, period, anchor = Subscription.Status.TRIALING, (now, trial_end), trial_end
        license_status, license_expiry = License.Status.TRIAL, trial_end
    else:
        # Issued already expired: the first payment extends it (``license_renew``).
        trial_end = None
        status, anchor = Subscription.Status.INCOMPLETE, now
        period = period_bounds(anchor=anchor, index=0, interval=interval, zone=organization_zone(organization))
        license_status, license_expiry = License.Status.ACTIVE, now
    license = license_issue(
        organization=organization,
        plan=plan,
        status=license_status,
        expires_at=license_expiry,
        actor=actor,
        source=source,
    )
    subscription = Subscription.objects.create(
        organization=organization,
        user=user,
        license=license,
        plan=plan,
        interval=interval,
        status=status,
        currency=plan.currency,
        gateway=gateway,
        payment_method=method,
        coupon=coupon,
        billing_anchor=anchor,
        periods_billed=0 if trial_days else 1,  # the first paid period is invoiced below
        current_period_start=period[0],
        current_period_end=period[1],
        trial_end=trial_end,
    )
    audit_record(
        action=AuditLog.Action.CREATE,
        resource=subscription,
        user=actor,
        organization=organization,
        changes={
            "plan": [None, plan.code],
            "interval": [None, interval],
            "status": [None, status],
            "trial_end": [None, trial_end.isoformat() if trial_end else None],
            "coupon": [None, coupon.code if coupon else None],
        },
        ip_address=ip_address,
        source=source,
    )
    emit_event("subscription.created", organization=organization, payload=subscription_event_data(subscription))
    if status == Subscription.Status.INCOMPLETE:
        subscription_invoice_issue(
            subscription=subscription, now=now, reason=Invoice.Reason.SUBSCRIPTION_CREATE, period=period
        )
    return subscription
