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


# --- subscriptions ------------------------------------------------------------------------------


def prorated_amount(*, price: Decimal, period_start, period_end, at) -> Decimal:
    """The part of a period's ``price`` that falls after ``at``: the one proration formula.

        prorated = price × (period_end − at) / (period_end − period_start)

    with both durations in whole seconds, computed in exact ``Decimal`` and not rounded here (the
    document rounds its amounts once, half up). An upgrade charges ``prorated(new) − prorated(old)``,
    a cancellation at once credits ``prorated(paid)``; ``at`` outside the period gives 0 or ``price``.
    """
    total = int((period_end - period_start).total_seconds())
    remaining = int((period_end - max(min(at, period_end), period_start)).total_seconds())
    if total <= 0:
        return ZERO
    return Decimal(price) * Decimal(remaining) / Decimal(total)


@dataclass(frozen=True)
class ChargeLine:
    """A line of a subscription invoice, before it is stored: exact amounts."""

    kind: str
    description: str
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal


_THOUSAND = Decimal("1000")


def overage_lines(*, terms, requests: int, tokens_input: int, tokens_output: int, cost: Decimal, label: str) -> list:
    """What one month's usage beyond ``terms`` (a ``PlanBillingTerms``) costs, as invoice lines.

    - ``per_token``: tokens beyond ``included_tokens`` at the per-1k prices; the allowance is
      spent on input tokens first, then output tokens;
    - ``per_request``: requests beyond ``included_ai_requests`` at ``price_per_request``;
    - ``cost_plus``: provider cost beyond ``included_ai_spend`` plus ``cost_markup_percent``;
    - ``none`` and ``hard_cap``: nothing.
    An allowance left empty is zero. Amounts are exact; the invoice rounds its total once.
    """
    mode = terms.overage
    lines = []
    if mode == "per_token":
        allowance = terms.included_tokens or 0
        input_over = max(tokens_input - allowance, 0)
        output_over = max(tokens_output - max(allowance - tokens_input, 0), 0)
        for count, price, what in (
            (input_over, terms.price_per_1k_input_tokens, "input tokens"),
            (output_over, terms.price_per_1k_output_tokens, "output tokens"),
        ):
            if count and price:
                quantity = Decimal(count) / _THOUSAND
                lines.append(
                    ChargeLine("overage", f"{label}: {count:,} {what} beyond the plan (per 1k)", quantity, price,
                               quantity * price)
                )  # fmt: skip
    elif mode == "per_request":
        over = max(requests - (terms.included_ai_requests or 0), 0)
        if over and terms.price_per_request:
            lines.append(
                ChargeLine("overage", f"{label}: {over:,} AI requests beyond the plan", Decimal(over),
                           terms.price_per_request, over * terms.price_per_request)
            )  # fmt: skip
    elif mode == "cost_plus":
        over = max(Decimal(cost) - (terms.included_ai_spend or ZERO), ZERO)
        if over:
            factor = 1 + terms.cost_markup_percent / _HUNDRED
            lines.append(
                ChargeLine("overage", f"{label}: AI spend beyond the plan (cost + {terms.cost_markup_percent}%)",
                           over, factor, over * factor)
            )  # fmt: skip
    return lines
