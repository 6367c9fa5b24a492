"""The catalogue staff manage: payment gateways, tax rates and coupons, and the coupon
redemptions checkout takes (and gives back when an order is never paid)."""

from typing import Any

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from billing.models import Coupon, Order, PaymentGateway, TaxRate
from celaest.db import delete_unless_referenced
from celaest.errors import Conflict, InvalidInput


def payment_gateway_delete(*, gateway: PaymentGateway) -> None:
    delete_unless_referenced(
        gateway, message="Orders were paid through this gateway; deactivate it instead.", code="gateway_in_use"
    )


def tax_rate_delete(*, tax_rate: TaxRate) -> None:
    delete_unless_referenced(
        tax_rate, message="Orders were taxed at this rate; deactivate it instead.", code="tax_rate_in_use"
    )


def _check_coupon(coupon: Coupon) -> None:
    errors = {}
    if coupon.discount_value is not None and coupon.discount_value < 0:
        errors["discount_value"] = ["Must not be negative."]
    if coupon.discount_type == Coupon.DiscountType.PERCENTAGE and coupon.discount_value > 100:
        errors["discount_value"] = ["A percentage discount is at most 100."]
    if coupon.valid_until is not None and coupon.valid_from is not None and coupon.valid_until <= coupon.valid_from:
        errors["valid_until"] = ["Must be after valid_from."]
    if coupon.duration == Coupon.Duration.REPEATING and not coupon.duration_in_periods:
        errors["duration_in_periods"] = ["A repeating coupon needs its number of periods."]
    if coupon.max_redemptions is not None and coupon.max_redemptions < coupon.times_redeemed:
        errors["max_redemptions"] = [f"Already redeemed {coupon.times_redeemed} times."]
    if errors:
        raise InvalidInput("The coupon is invalid.", details=errors)


@transaction.atomic
def coupon_create(**fields: Any) -> Coupon:
    """Create a coupon from its fields (``code``, ``discount_type``, ``discount_value``, ...)."""
    coupon = Coupon(**fields)
    _check_coupon(coupon)
    coupon.save()
    return coupon


@transaction.atomic
def coupon_update(*, coupon: Coupon, **changes: Any) -> Coupon:
    # Locked: checkout increments times_redeemed on this row concurrently.
    coupon = Coupon.objects.select_for_update().get(pk=coupon.pk)
    for name, value in changes.items():
        setattr(coupon, name, value)
    _check_coupon(coupon)
    coupon.save(update_fields=[*changes, "updated_at"])
    return coupon


def coupon_delete(*, coupon: Coupon) -> None:
    delete_unless_referenced(coupon, message="Orders used this coupon; deactivate it instead.", code="coupon_in_use")


def coupon_redeem(*, code: str, currency: str, now) -> Coupon:
    """Take one redemption of the coupon, or refuse. One conditional UPDATE decides, so
    concurrent checkouts can never redeem a coupon more than ``max_redemptions`` times."""
    coupon = Coupon.objects.filter(code=code).first()
    if coupon is None or not coupon.is_active:
        raise InvalidInput("This coupon does not exist or is no longer active.", code="coupon_invalid")
    if coupon.valid_from > now or (coupon.valid_until is not None and coupon.valid_until <= now):
        raise InvalidInput("This coupon is not valid at this time.", code="coupon_expired")
    if coupon.discount_type == Coupon.DiscountType.FIXED and coupon.currency != currency:
        raise InvalidInput(f"This coupon is in {coupon.currency}; the order is in {currency}.", code="coupon_currency")
    taken = (
        Coupon.objects.filter(pk=coupon.pk, is_active=True)
        .filter(Q(max_redemptions__isnull=True) | Q(times_redeemed__lt=F("max_redemptions")))
        .update(times_redeemed=F("times_redeemed") + 1, updated_at=now)
    )
    if not taken:
        raise Conflict("This coupon has been fully redeemed.", code="coupon_exhausted")
    return coupon


def coupon_release(*, order: Order) -> None:
    """Give back the redemption of an order that was never paid."""
    if order.coupon_id is not None:
        Coupon.objects.filter(pk=order.coupon_id, times_redeemed__gt=0).update(
            times_redeemed=F("times_redeemed") - 1, updated_at=timezone.now()
        )
