from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.models import Invoice
from celaest.errors import ImmutableRecord
from tests.db import raises_integrity_error
from tests.factories import (
    CouponFactory,
    InvoiceFactory,
    OrderFactory,
    OrderItemFactory,
    PaymentGatewayFactory,
    PaymentMethodFactory,
    TaxRateFactory,
)

pytestmark = pytest.mark.django_db


def test_order_and_invoice_numbers_are_unique():
    OrderFactory(order_number="ORD-2026-000001")
    with raises_integrity_error():
        OrderFactory(order_number="ORD-2026-000001")
    InvoiceFactory(invoice_number="INV-2026-000001")
    with raises_integrity_error():
        InvoiceFactory(invoice_number="INV-2026-000001")


def test_codes_are_unique():
    TaxRateFactory(code="es-vat")
    with raises_integrity_error():
        TaxRateFactory(code="es-vat")
    CouponFactory(code="WELCOME")
    with raises_integrity_error():
        CouponFactory(code="WELCOME")
    PaymentGatewayFactory(code="stripe", provider="stripe")
    with raises_integrity_error():
        PaymentGatewayFactory._meta.model.objects.create(code="stripe", name="dup", provider="stripe")


def test_amounts_cannot_be_negative():
    with raises_integrity_error():
        OrderFactory(total=-1)
    with raises_integrity_error():
        OrderItemFactory(unit_price=-1)
    with raises_integrity_error():
        OrderItemFactory(quantity=0)


def test_percentages_are_bounded():
    with raises_integrity_error():
        TaxRateFactory(rate=101)
    with raises_integrity_error():
        PaymentGatewayFactory(code="x", fee_percentage=-1)
    with raises_integrity_error():
        CouponFactory(discount_type="percentage", discount_value=150)


def test_coupon_validity_window_and_redemptions():
    now = timezone.now()
    with raises_integrity_error():
        CouponFactory(valid_from=now, valid_until=now - timedelta(days=1))
    with raises_integrity_error():
        CouponFactory(max_redemptions=5, times_redeemed=6)


def test_one_default_payment_method_per_user():
    first = PaymentMethodFactory(is_default=True)
    PaymentMethodFactory(user=first.user, is_default=False)
    with raises_integrity_error():
        PaymentMethodFactory(user=first.user, is_default=True)


def test_card_last4_is_four_digits():
    with raises_integrity_error():
        PaymentMethodFactory(card_last4="42a2")


# --- issued invoices are documents ---------------------------------------------------------------


def test_an_issued_invoice_cannot_be_edited_or_deleted_whatever_saves_it():
    invoice = InvoiceFactory(total=Decimal("99.00"))
    invoice.total = Decimal("1.00")
    with pytest.raises(ImmutableRecord) as excinfo:
        invoice.save()
    assert excinfo.value.details == {"fields": ["total"]}
    invoice.refresh_from_db()
    with pytest.raises(ImmutableRecord):
        invoice.save(update_fields=["billing_details"])
    with pytest.raises(ImmutableRecord):
        Invoice.objects.filter(pk=invoice.pk).update(total=Decimal("1.00"), billing_details={})
    with pytest.raises(ImmutableRecord):
        invoice.delete()
    with pytest.raises(ImmutableRecord):
        Invoice.objects.filter(pk=invoice.pk).delete()
    invoice.refresh_from_db()
    assert invoice.total == Decimal("99.00")


def test_an_issued_invoice_still_moves_through_its_lifecycle():
    invoice = InvoiceFactory(status="issued")
    invoice.status = "paid"
    invoice.save()  # a full save that changes only the lifecycle
    Invoice.objects.filter(pk=invoice.pk).update(status="void", voided_at=invoice.created_at)
    invoice.refresh_from_db()
    assert invoice.status == "void"
