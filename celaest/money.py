"""Exact money: Decimal amounts with explicit precision, rounded once per document."""

from decimal import ROUND_HALF_UP, Decimal

from django.db import models

# Minor units per ISO 4217 currency where they differ from 2.
_MINOR_UNITS = {"JPY": 0, "KRW": 0, "CLP": 0, "VND": 0, "ISK": 0, "BHD": 3, "KWD": 3, "OMR": 3, "TND": 3}
DEFAULT_CURRENCY = "USD"


def minor_units(currency: str) -> int:
    return _MINOR_UNITS.get(currency.upper(), 2)


def quantize_money(amount: Decimal, currency: str) -> Decimal:
    """Round a document-level amount to the currency's minor unit, half up."""
    exponent = Decimal(1).scaleb(-minor_units(currency))
    return Decimal(amount).quantize(exponent, rounding=ROUND_HALF_UP)


def MoneyField(**kwargs) -> models.DecimalField:  # noqa: N802 - reads like a field class
    """A document amount: 14 digits, 4 decimal places (enough for every ISO currency)."""
    kwargs.setdefault("max_digits", 14)
    kwargs.setdefault("decimal_places", 4)
    kwargs.setdefault("default", Decimal("0"))
    return models.DecimalField(**kwargs)


def CostField(**kwargs) -> models.DecimalField:  # noqa: N802
    """A metered cost in USD with sub-cent precision (AI token costs)."""
    kwargs.setdefault("max_digits", 18)
    kwargs.setdefault("decimal_places", 8)
    kwargs.setdefault("default", Decimal("0"))
    return models.DecimalField(**kwargs)


def CurrencyField(**kwargs) -> models.CharField:  # noqa: N802
    kwargs.setdefault("max_length", 3)
    kwargs.setdefault("default", DEFAULT_CURRENCY)
    return models.CharField(**kwargs)
