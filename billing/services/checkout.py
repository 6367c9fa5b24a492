"""Checkout: an order priced on the server from the catalogue, idempotent per
``Idempotency-Key``, and the start of its payment through the order's gateway."""

import hashlib
import json
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.models import AuditLog
from audit.services import audit_record
from billing.gateways import PaymentSession, gateway_backend
from billing.models import Order, OrderItem, PaymentGateway, TaxRate
from billing.pricing import order_amounts_compute
from celaest.errors import Conflict, Forbidden, InvalidInput
from identity.models import Organization, User
from marketplace.models import Product
from settings_app.events import emit_event

from .catalogue import coupon_redeem
from .event_data import order_event_data
from .numbering import document_number_next
from .payments import order_mark_paid


def _merge_lines(items: list[tuple[Product, int]]) -> list[tuple[Product, int]]:
    """One line per product, quantities added, in the order first given."""
    merged: dict = {}
    for product, quantity in items:
        if product.pk in merged:
            merged[product.pk] = (product, merged[product.pk][1] + quantity)
        else:
            merged[product.pk] = (product, quantity)
    return list(merged.values())


def order_request_fingerprint(*, items: list[tuple[Product, int]], gateway_code: str, coupon_code: str) -> str:
    """What makes two checkout requests "the same body" for an Idempotency-Key."""
    body = {
        "items": [[str(product.pk), quantity] for product, quantity in items],
        "gateway": gateway_code,
        "coupon": coupon_code or "",
    }
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def tax_rate_for(*, organization: Organization) -> TaxRate | None:
    """The active tax rate of the organization's country (``settings["country"]``): the one of
    its region (``settings["region"]``) if there is one, else the national rate."""
    return tax_rates_for(organizations=[organization])[organization.pk]


def tax_rates_for(*, organizations) -> dict:
    """``tax_rate_for`` of each organization (by id), in one query (a renewal batch)."""
    places = {}
    for organization in organizations:
        settings = organization.settings or {}
        places[organization.pk] = (str(settings.get("country") or "").upper(), str(settings.get("region") or ""))
    rates: dict[str, list[TaxRate]] = {}
    countries = {country for country, _ in places.values() if country}
    for rate in TaxRate.objects.filter(is_active=True, country_code__in=countries).order_by("code"):
        rates.setdefault(rate.country_code, []).append(rate)
    chosen = {}
    for organization_id, (country, region) in places.items():
        candidates = [rate for rate in rates.get(country, ()) if rate.region in ("", region)]
        # A regional rate (``region`` non-empty) wins over the national one (""); then the code.
        chosen[organization_id] = min(candidates, key=lambda rate: rate.region == "", default=None)
    return chosen


def _order_for_key(*, user: User, idempotency_key: str) -> Order | None:
    return Order.objects.filter(user=user, idempotency_key=idempotency_key).first()


def _replay(*, order: Order, fingerprint: str) -> Order:
    if order.request_hash != fingerprint:
        raise Conflict("This Idempotency-Key was used for a different order request.", code="idempotency_key_reused")
    return order


def order_checkout(
    *,
    user: User,
    items: list[tuple[Product, int]],
    gateway_code: str,
    coupon_code: str = "",
    idempotency_key: str = "",
    source: str = "api",
    ip_address: str | None = None,
) -> tuple[Order, bool]:
    """Place an order priced on the server; returns ``(order, created)``.

    With an ``idempotency_key``, the same request again returns the order it made (``created``
    False) and a different request with that key is a 409, even when both race.
    """
    fingerprint = order_request_fingerprint(items=items, gateway_code=gateway_code, coupon_code=coupon_code)
    if idempotency_key:
        existing = _order_for_key(user=user, idempotency_key=idempotency_key)
        if existing is not None:
            return _replay(order=existing, fingerprint=fingerprint), False
    try:
        order = _order_create(
            user=user,
            items=items,
            gateway_code=gateway_code,
            coupon_code=coupon_code,
            idempotency_key=idempotency_key,
            fingerprint=fingerprint,
            source=source,
            ip_address=ip_address,
        )
    except IntegrityError:
        existing = _order_for_key(user=user, idempotency_key=idempotency_key) if idempotency_key else None
        if existing is None:
            raise
        return _replay(order=existing, fingerprint=fingerprint), False
    return order, True


@transaction.atomic
def _order_create(
    *,
    user: User,
    items: list[tuple[Product, int]],
    gateway_code: str,
    coupon_code: str,
    idempotency_key: str,
    fingerprint: str,
    source: str,
    ip_address: str | None,
) -> Order:
    organization = user.organization
    if organization is None:
        raise Forbidden("Only members of an organization can place orders.", code="no_organization")
    gateway = PaymentGateway.objects.filter(code=gateway_code, status=PaymentGateway.Status.ACTIVE).first()
    if gateway is None:
        raise InvalidInput("No active payment gateway with this code.", details={"gateway": ["Unknown or inactive."]})
    lines = _merge_lines(items)
    if not lines:
        raise InvalidInput("An order needs at least one item.", details={"items": ["Empty."]})
    unavailable = [
        str(product.pk)
        for product, _ in lines
        if product.status != Product.Status.PUBLISHED or product.deleted_at is not None
    ]
    if unavailable:
        raise InvalidInput("Some products are not for sale.", details={"items": unavailable})
    currencies = {product.currency for product, _ in lines}
    if len(currencies) > 1:
        raise InvalidInput("All items of an order must be in one currency.", code="mixed_currencies")
    currency = currencies.pop()
    now = timezone.now()

    coupon = coupon_redeem(code=coupon_code, currency=currency, now=now) if coupon_code else None
    tax_rate = tax_rate_for(organization=organization)
    tax_percent = tax_rate.rate if tax_rate is not None else Decimal("0")
    amounts = order_amounts_compute(
        line_totals=[product.price * quantity for product, quantity in lines],
        currency=currency,
        discount_type=coupon.discount_type if coupon else None,
        discount_value=coupon.discount_value if coupon else Decimal("0"),
        tax_percent=tax_percent,
    )
    order = Order.objects.create(
        order_number=document_number_next(key="order", year=now.year),
        organization=organization,
        user=user,
        gateway=gateway,
        currency=currency,
        **amounts.document_fields(),
        tax_rate=tax_rate,
        tax_rate_percent=tax_percent,
        coupon=coupon,
        idempotency_key=idempotency_key,
        request_hash=fingerprint,
    )
    OrderItem.objects.bulk_create(
        [
            OrderItem(
                order=order,
                product=product,
                description=product.name[:255],
                quantity=quantity,
                unit_price=product.price,
                total=product.price * quantity,
            )
            for product, quantity in lines
        ]
    )
    audit_record(
        action=AuditLog.Action.CREATE,
        resource=order,
        user=user,
        organization=organization,
        changes={"status": [None, order.status], "total": [None, str(order.total)], "currency": [None, currency]},
        ip_address=ip_address,
        source=source,
    )
    emit_event("order.created", organization=organization, payload=order_event_data(order))
    if order.total == 0:
        # Nothing to pay (a 100% coupon): the order is paid as it is placed.
        order = order_mark_paid(order=order, reference="no-payment-due", actor=user, source=source)
    return order


def order_payment_start(*, order: Order) -> PaymentSession:
    """Start (or resume) paying a pending order through its gateway. Runs outside any database
    transaction: it may call the gateway over the network."""
    backend = gateway_backend(order.gateway)
    session = backend.payment_start(order=order)
    if session.reference and not order.gateway_reference:
        Order.objects.filter(pk=order.pk, gateway_reference="").update(
            gateway_reference=session.reference, updated_at=timezone.now()
        )
        order.gateway_reference = session.reference
    return session
