"""Writes for billing that the REST API exposes: the catalogue staff manage (gateways, tax rates,
coupons) and an organization's saved payment methods."""

from typing import Any

from django.db import transaction
from django.db.models import ProtectedError

from celaest.errors import Conflict, InvalidInput

from .models import Coupon, PaymentGateway, PaymentMethod, TaxRate


def _delete_unless_referenced(instance, *, message: str, code: str) -> None:
    try:
        with transaction.atomic():
            instance.delete()
    except ProtectedError as exc:
        raise Conflict(message, code=code) from exc


# --- payment methods -------------------------------------------------------------------------


@transaction.atomic
def payment_method_set_default(*, payment_method: PaymentMethod) -> PaymentMethod:
    """Make ``payment_method`` its organization's one default. The organization's methods are
    locked (in a fixed order) so concurrent calls cannot leave two defaults or none."""
    organization_methods = PaymentMethod.objects.filter(organization_id=payment_method.organization_id)
    list(organization_methods.select_for_update().order_by("pk").values_list("pk", flat=True))
    # The old default is cleared first: "one default per user" is checked row by row.
    organization_methods.filter(is_default=True).exclude(pk=payment_method.pk).update(is_default=False)
    organization_methods.filter(pk=payment_method.pk).update(is_default=True)
    payment_method.refresh_from_db()
    return payment_method


@transaction.atomic
def payment_method_delete(*, payment_method: PaymentMethod) -> None:
    payment_method.delete()


# --- catalogue -------------------------------------------------------------------------------


def payment_gateway_delete(*, gateway: PaymentGateway) -> None:
    _delete_unless_referenced(
        gateway, message="Orders were paid through this gateway; deactivate it instead.", code="gateway_in_use"
    )


def tax_rate_delete(*, tax_rate: TaxRate) -> None:
    _delete_unless_referenced(
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
    _delete_unless_referenced(coupon, message="Orders used this coupon; deactivate it instead.", code="coupon_in_use")
