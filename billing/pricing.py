"""Server-side pricing of an order: subtotal, coupon discount, tax on the discounted amount and
total, in exact ``Decimal`` money.

Each document amount is rounded once, half up, to the currency's minor unit: the subtotal from
the exact line totals, the discount from that subtotal, the tax from the discounted amount; the
total is their sum, so an invoice always adds up to the cent.
"""

from dataclasses import dataclass
from decimal import Decimal

from celaest.money import minor_units, quantize_money

from .models import Coupon, PaymentGateway

_HUNDRED = Decimal("100")
ZERO = Decimal("0")


@dataclass(frozen=True)
class OrderAmounts:
    subtotal: Decimal
    discount: Decimal
    tax: Decimal
    total: Decimal

    def document_fields(self) -> dict[str, Decimal]:
        """The amounts as orders and invoices store them."""
        return {"subtotal": self.subtotal, "discount_total": self.discount, "tax_total": self.tax, "total": self.total}


def order_amounts_compute(
    *,
    line_totals: list[Decimal],
    currency: str,
    discount_type: str | None = None,
    discount_value: Decimal = ZERO,
    tax_percent: Decimal = ZERO,
) -> OrderAmounts:
    """Price a document. A fixed discount is in the document's currency; no discount makes the
    amount negative."""
    subtotal = quantize_money(sum(line_totals, ZERO), currency)
    if discount_type == Coupon.DiscountType.PERCENTAGE:
        discount = subtotal * Decimal(discount_value) / _HUNDRED
    elif discount_type == Coupon.DiscountType.FIXED:
        discount = Decimal(discount_value)
    else:
        discount = ZERO
    discount = quantize_money(min(max(discount, ZERO), subtotal), currency)
    tax = quantize_money((subtotal - discount) * Decimal(tax_percent) / _HUNDRED, currency)
    return OrderAmounts(subtotal=subtotal, discount=discount, tax=tax, total=subtotal - discount + tax)


def gateway_fee_compute(*, gateway: PaymentGateway, total: Decimal, currency: str) -> Decimal:
    """What the gateway keeps of a payment of ``total``: its percentage plus its fixed fee."""
    if total <= 0:
        return quantize_money(ZERO, currency)
    return quantize_money(total * gateway.fee_percentage / _HUNDRED + gateway.fee_fixed, currency)


def amount_in_minor_units(amount: Decimal, currency: str) -> int:
    """``12.34`` USD → ``1234``: how card gateways such as Stripe take amounts."""
    return int(quantize_money(amount, currency).scaleb(minor_units(currency)))
