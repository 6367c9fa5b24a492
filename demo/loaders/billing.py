"""Demo payment gateways, methods, coupons, tax rates, orders and invoices, priced by ``billing.pricing``."""

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal

from billing.models import (
    Coupon,
    Invoice,
    Order,
    OrderItem,
    PaymentGateway,
    PaymentMethod,
    TaxRate,
)
from billing.pricing import gateway_fee_compute, order_amounts_compute
from billing.services.invoices import invoice_billing_details
from demo.loaders.base import DEMO_ORG_SLUG, SECOND_ORG_SLUG, DemoRun, demo_uuid
from demo.loaders.marketplace import PUBLISHED_PRODUCTS
from identity.models import Organization
from marketplace.models import (
    Product,
)

_TAX_RATES = (
    ("us-ca-sales", "California sales tax", "7.250", "US", "CA"),
    ("us-ny-sales", "New York sales tax", "4.000", "US", "NY"),
    ("es-vat-21", "Spain VAT", "21.000", "ES", ""),
    ("de-vat-19", "Germany VAT", "19.000", "DE", ""),
    ("fr-vat-20", "France VAT", "20.000", "FR", ""),
    ("gb-vat-20", "United Kingdom VAT", "20.000", "GB", ""),
    ("mx-iva-16", "Mexico IVA", "16.000", "MX", ""),
)
TAX_BY_COUNTRY = {
    "US": "us-ca-sales",
    "ES": "es-vat-21",
    "DE": "de-vat-19",
    "FR": "fr-vat-20",
    "GB": "gb-vat-20",
    "MX": "mx-iva-16",
}


def build_order(
    demo: DemoRun,
    *,
    pk: uuid.UUID,
    organization: Organization,
    user_id: uuid.UUID,
    user_name: str,
    gateway: PaymentGateway,
    status: str,
    lines: Sequence[tuple[Product, int]],
    coupon: Coupon | None,
    tax_rate: TaxRate,
    created_at: datetime,
) -> tuple[Order, list[OrderItem], Invoice | None]:
    """An order with its items, and its invoice when it was paid (or paid and refunded); unsaved."""
    currency = "USD"
    amounts = order_amounts_compute(
        line_totals=[product.price * qty for product, qty in lines],
        currency=currency,
        discount_type=coupon.discount_type if coupon else None,
        discount_value=coupon.discount_value if coupon else Decimal("0"),
        tax_percent=tax_rate.rate,
    )
    paid = status in (Order.Status.PAID, Order.Status.REFUNDED)
    paid_at = created_at + timedelta(minutes=7) if paid else None
    order = Order(
        id=pk,
        order_number=demo.order_numbers.next(created_at.year),
        organization=organization,
        user_id=user_id,
        gateway=gateway,
        status=status,
        currency=currency,
        **amounts.document_fields(),
        tax_rate=tax_rate,
        tax_rate_percent=tax_rate.rate,
        coupon=coupon,
        gateway_fee=gateway_fee_compute(gateway=gateway, total=amounts.total, currency=currency)
        if paid
        else Decimal("0"),
        gateway_reference=f"{'pi' if gateway.provider == 'stripe' else 'bt'}_{pk.hex[:24]}" if paid else "",
        paid_at=paid_at,
        cancelled_at=created_at + timedelta(hours=2) if status == Order.Status.CANCELLED else None,
        refunded_at=created_at + timedelta(days=3) if status == Order.Status.REFUNDED else None,
        created_at=created_at,
    )
    items = [
        OrderItem(
            id=demo_uuid("order-item", pk, position),
            order=order,
            product=product,
            description=product.name,
            quantity=qty,
            unit_price=product.price,
            total=product.price * qty,
            created_at=created_at,
        )
        for position, (product, qty) in enumerate(lines)
    ]
    invoice = None
    if paid:
        invoice = Invoice(
            id=demo_uuid("invoice", pk),
            invoice_number=demo.invoice_numbers.next(created_at.year),
            organization=organization,
            order=order,
            user_id=user_id,
            status=Invoice.Status.CREDITED if status == Order.Status.REFUNDED else Invoice.Status.PAID,
            currency=currency,
            **amounts.document_fields(),
            billing_details=invoice_billing_details(
                organization=organization, contact=user_name, tax_rate_percent=tax_rate.rate
            ),
            issued_at=paid_at,
            paid_at=paid_at,
            voided_at=created_at + timedelta(days=3) if status == Order.Status.REFUNDED else None,
            created_at=paid_at,
        )
    return order, items, invoice


def seed_billing(demo: DemoRun) -> None:
    gateways = (
        (
            "manual",
            "Bank transfer",
            PaymentGateway.Provider.MANUAL,
            PaymentGateway.Status.ACTIVE,
            "0.00",
            "0",
            {
                "instructions": "Transfer to IBAN ES91 2100 0418 4502 0005 1332, reference: order number.",
                "terms_days": 15,
            },
        ),
        (
            "stripe",
            "Stripe (cards)",
            PaymentGateway.Provider.STRIPE,
            PaymentGateway.Status.TEST,
            "2.90",
            "0.30",
            {"statement_descriptor": "CELAEST", "capture": "automatic"},
        ),
    )
    for code, name, provider, status, fee_pct, fee_fixed, config in gateways:
        demo.gateways[code], _ = PaymentGateway.objects.get_or_create(
            code=code,
            defaults={
                "name": name,
                "provider": provider,
                "status": status,
                "fee_percentage": Decimal(fee_pct),
                "fee_fixed": Decimal(fee_fixed),
                "config": config,
            },
        )

    for code, name, rate, country, region in _TAX_RATES:
        demo.tax_rates[code], _ = TaxRate.objects.get_or_create(
            code=code, defaults={"name": name, "rate": Decimal(rate), "country_code": country, "region": region}
        )

    coupons = (
        ("WELCOME10", "10% off your first order", Coupon.DiscountType.PERCENTAGE, "10.00", None, 0, -90, 275, True),
        ("SPRING25", "25 USD off in spring", Coupon.DiscountType.FIXED, "25.00", 100, 37, -120, -60, True),
        (
            "LAUNCH50",
            "Launch week: 50% off (used up)",
            Coupon.DiscountType.PERCENTAGE,
            "50.00",
            5,
            5,
            -200,
            -190,
            False,
        ),
    )
    for code, description, kind, value, max_redemptions, redeemed, from_days, until_days, active in coupons:
        demo.coupons[code], _ = Coupon.objects.get_or_create(
            code=code,
            defaults={
                "description": description,
                "discount_type": kind,
                "discount_value": Decimal(value),
                "max_redemptions": max_redemptions,
                "times_redeemed": redeemed,
                "valid_from": demo.now + timedelta(days=from_days),
                "valid_until": demo.now + timedelta(days=until_days),
                "is_active": active,
            },
        )

    methods = (
        ("demo-visa", DEMO_ORG_SLUG, "stripe", PaymentMethod.Type.CARD, PaymentMethod.CardBrand.VISA, "4242", True),
        (
            "demo-mc",
            DEMO_ORG_SLUG,
            "stripe",
            PaymentMethod.Type.CARD,
            PaymentMethod.CardBrand.MASTERCARD,
            "4444",
            False,
        ),
        ("acme-bank", SECOND_ORG_SLUG, "manual", PaymentMethod.Type.BANK_TRANSFER, "", "", True),
    )
    for key, org_slug, gateway, kind, brand, last4, is_default in methods:
        owner = demo.person(org_slug, "owner")
        pk = demo_uuid("payment-method", key)
        if PaymentMethod.objects.filter(pk=pk).exists():
            continue
        PaymentMethod.objects.create(
            id=pk,
            organization=demo.orgs[org_slug],
            user=owner,
            gateway=demo.gateways[gateway],
            type=kind,
            card_brand=brand,
            card_last4=last4,
            exp_month=(8 if last4 else None),
            exp_year=(demo.now.year + 2 if last4 else None),
            gateway_token=f"pm_{pk.hex[:24]}",
            # One default per user (a partial unique constraint): keep one set by hand.
            is_default=is_default and not PaymentMethod.objects.filter(user=owner, is_default=True).exists(),
        )

    desktop, extractor, workshop = (demo.products[s] for s in PUBLISHED_PRODUCTS)
    orders = (
        # key, org, gateway, status, lines, coupon, days ago
        ("demo-1", DEMO_ORG_SLUG, "stripe", Order.Status.PAID, [(desktop, 1), (extractor, 2)], "WELCOME10", 28),
        ("demo-2", DEMO_ORG_SLUG, "manual", Order.Status.PENDING, [(workshop, 1)], None, 2),
        ("demo-3", DEMO_ORG_SLUG, "stripe", Order.Status.CANCELLED, [(extractor, 1)], None, 14),
        ("acme-1", SECOND_ORG_SLUG, "manual", Order.Status.PAID, [(desktop, 5)], None, 60),
        ("acme-2", SECOND_ORG_SLUG, "stripe", Order.Status.REFUNDED, [(extractor, 1)], "WELCOME10", 21),
    )
    # Numbers follow time, as the billing service would have handed them out.
    for key, org_slug, gateway, status, lines, coupon, days_ago in sorted(orders, key=lambda o: -o[-1]):
        pk = demo_uuid("order", key)
        existing = Order.objects.filter(pk=pk).first()
        if existing is not None:
            demo.orders[key] = existing
            continue
        org = demo.orgs[org_slug]
        owner = demo.person(org_slug, "owner")
        order, items, invoice = build_order(
            demo,
            pk=pk,
            organization=org,
            user_id=owner.pk,
            user_name=owner.full_name,
            gateway=demo.gateways[gateway],
            status=status,
            lines=lines,
            coupon=demo.coupons[coupon] if coupon else None,
            tax_rate=demo.tax_rates[TAX_BY_COUNTRY[org.settings.get("country", "US")]],
            created_at=demo.now - timedelta(days=days_ago, hours=3),
        )
        order.save(force_insert=True)
        OrderItem.objects.bulk_create(items)
        if invoice is not None:
            invoice.save(force_insert=True)
        demo.orders[key] = order
