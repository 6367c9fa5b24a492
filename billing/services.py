"""Writes for billing: the catalogue staff manage (gateways, tax rates, coupons), saved payment
methods, and the life of an order — checkout priced on the server, payment recorded exactly once
(invoice, assets, licenses), refunds and cancellations that take the grants back."""

import hashlib
import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Max, ProtectedError, Q
from django.db.models.functions import Substr
from django.utils import timezone

from audit.models import AuditLog, SystemEvent
from audit.services import audit_record, system_event_record
from celaest.errors import Conflict, Forbidden, InvalidInput
from identity.models import Organization, User
from licensing.models import License
from licensing.services import license_issue, license_suspend
from marketplace.models import CustomerAsset, Product
from settings_app.events import emit_event

from .gateways import PaymentSession, gateway_backend
from .models import Coupon, DocumentSequence, Invoice, Order, OrderItem, PaymentGateway, PaymentMethod, TaxRate
from .pricing import gateway_fee_compute, order_amounts_compute


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


# --- document numbers ------------------------------------------------------------------------

_DOCUMENT_PREFIXES = {"order": "ORD", "invoice": "INV"}
_DOCUMENT_MODELS = {"order": (Order, "order_number"), "invoice": (Invoice, "invoice_number")}


def _highest_stored_number(*, model, field: str, stem: str) -> int:
    last = (
        model._base_manager.filter(**{f"{field}__regex": rf"^{stem}[0-9]{{6}}$"})
        .order_by(f"-{field}")
        .values_list(field, flat=True)
        .first()
    )
    return int(last[len(stem) :]) if last else 0


def document_number_next(*, key: str, year: int) -> str:
    """The next ``PREFIX-YYYY-NNNNNN`` number of a kind of document, e.g. ``INV-2026-000001``.

    Call it inside the transaction that stores the document: the year's sequence row stays
    locked until that transaction ends, so numbers are handed out one at a time and a rollback
    gives its number back (gapless). A new year starts after the highest number already stored
    (documents loaded by ``seed_demo`` or imported), and numbers taken outside the sequence are
    skipped rather than collided with.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("document_number_next() must run inside the document's transaction.")
    model, field = _DOCUMENT_MODELS[key]
    stem = f"{_DOCUMENT_PREFIXES[key]}-{year}-"
    sequences = DocumentSequence.objects.select_for_update()
    sequence = sequences.filter(key=key, year=year).first()
    if sequence is None:
        try:
            with transaction.atomic():
                DocumentSequence.objects.create(
                    key=key, year=year, last_number=_highest_stored_number(model=model, field=field, stem=stem)
                )
        except IntegrityError:
            pass  # a concurrent first allocation of the year created it; its lock orders us
        sequence = sequences.get(key=key, year=year)
    number = sequence.last_number + 1
    if model._base_manager.filter(**{field: f"{stem}{number:06d}"}).exists():
        number = _highest_stored_number(model=model, field=field, stem=stem) + 1
    sequence.last_number = number
    sequence.save(update_fields=["last_number", "updated_at"])
    return f"{stem}{number:06d}"


@transaction.atomic
def document_sequences_sync() -> int:
    """Move every year's sequence past the highest number stored for it, for documents written
    outside the sequence (``seed_demo``, imports). Returns the number of sequences touched."""
    touched = 0
    for key, (model, field) in _DOCUMENT_MODELS.items():
        stem_length = len(_DOCUMENT_PREFIXES[key]) + 1
        highest = (
            model._base_manager.filter(**{f"{field}__regex": rf"^{_DOCUMENT_PREFIXES[key]}-[0-9]{{4}}-[0-9]{{6}}$"})
            .annotate(year=Substr(field, stem_length + 1, 4))
            .values("year")
            .annotate(last=Max(field))
            .order_by("year")
        )
        for row in highest:
            year, last = int(row["year"]), int(row["last"][-6:])
            sequence, _ = DocumentSequence.objects.select_for_update().get_or_create(key=key, year=year)
            if sequence.last_number < last:
                sequence.last_number = last
                sequence.save(update_fields=["last_number", "updated_at"])
                touched += 1
    return touched


# --- checkout --------------------------------------------------------------------------------


def order_event_data(order: Order) -> dict:
    """The webhook payload describing an order (no personal data beyond ids)."""
    return {
        "id": str(order.pk),
        "order_number": order.order_number,
        "status": order.status,
        "currency": order.currency,
        "subtotal": str(order.subtotal),
        "discount_total": str(order.discount_total),
        "tax_total": str(order.tax_total),
        "total": str(order.total),
        "gateway": order.gateway.code,
        "paid_at": order.paid_at.isoformat() if order.paid_at else None,
    }


def invoice_event_data(invoice: Invoice) -> dict:
    return {
        "id": str(invoice.pk),
        "invoice_number": invoice.invoice_number,
        "order": str(invoice.order_id),
        "status": invoice.status,
        "currency": invoice.currency,
        "total": str(invoice.total),
        "issued_at": invoice.issued_at.isoformat() if invoice.issued_at else None,
    }


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


def _coupon_redeem(*, code: str, currency: str, now) -> Coupon:
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


def _coupon_release(*, order: Order) -> None:
    """Give back the redemption of an order that was never paid."""
    if order.coupon_id is not None:
        Coupon.objects.filter(pk=order.coupon_id, times_redeemed__gt=0).update(
            times_redeemed=F("times_redeemed") - 1, updated_at=timezone.now()
        )


def tax_rate_for(*, organization: Organization) -> TaxRate | None:
    """The active tax rate of the organization's country (``settings["country"]``): the one of
    its region (``settings["region"]``) if there is one, else the national rate."""
    settings = organization.settings or {}
    country = str(settings.get("country") or "").upper()
    if not country:
        return None
    rates = TaxRate.objects.filter(is_active=True, country_code=country, region__in=["", settings.get("region") or ""])
    # A regional rate ("region" non-empty) sorts before the national one ("").
    return rates.order_by("-region", "code").first()


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

    coupon = _coupon_redeem(code=coupon_code, currency=currency, now=now) if coupon_code else None
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
        subtotal=amounts.subtotal,
        discount_total=amounts.discount,
        tax_total=amounts.tax,
        total=amounts.total,
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


# --- payment, refunds, cancellations ---------------------------------------------------------


def _lock_order(order: Order) -> Order:
    return (
        Order.objects.select_for_update(of=("self",)).select_related("gateway", "organization", "user").get(pk=order.pk)
    )


def invoice_issue(*, order: Order, now) -> Invoice:
    """The invoice of a paid order, numbered from the year's gapless sequence. The caller holds
    the order's lock."""
    organization = order.organization
    invoice = Invoice.objects.create(
        invoice_number=document_number_next(key="invoice", year=now.year),
        organization=organization,
        order=order,
        user=order.user,
        status=Invoice.Status.PAID,
        currency=order.currency,
        subtotal=order.subtotal,
        discount_total=order.discount_total,
        tax_total=order.tax_total,
        total=order.total,
        billing_details={
            "name": organization.name,
            "email": organization.email,
            "contact": order.user.get_full_name() or order.user.email,
            "country": (organization.settings or {}).get("country", ""),
            "tax_rate_percent": str(order.tax_rate_percent),
        },
        issued_at=now,
        paid_at=now,
    )
    audit_record(
        action=AuditLog.Action.CREATE,
        resource=invoice,
        organization=organization,
        changes={"invoice_number": [None, invoice.invoice_number], "total": [None, str(invoice.total)]},
    )
    emit_event("invoice.issued", organization=organization, payload=invoice_event_data(invoice))
    return invoice


def _grant_assets(*, order: Order, now, actor: User | None, source: str) -> list[CustomerAsset]:
    """One asset per unit bought; a unit of a product that carries a plan also gets a license."""
    assets = []
    for item in order.items.select_related("product__plan").order_by("created_at", "pk"):
        product = item.product
        for _ in range(item.quantity):
            license = None
            if product.plan is not None:
                license = license_issue(
                    organization=order.organization,
                    plan=product.plan,
                    status=License.Status.ACTIVE,
                    expires_in_days=product.license_term_days,
                    actor=actor,
                    source=source,
                )
            assets.append(
                CustomerAsset(
                    organization=order.organization,
                    product=product,
                    user=order.user,
                    license=license,
                    order=order,
                    granted_at=now,
                    expires_at=now + timedelta(days=product.asset_term_days) if product.asset_term_days else None,
                )
            )
    return CustomerAsset.objects.bulk_create(assets)


@transaction.atomic
def order_mark_paid(
    *,
    order: Order,
    reference: str = "",
    actor: User | None = None,
    source: str = "system",
    ip_address: str | None = None,
) -> Order:
    """Record the payment of an order — exactly once, however many confirmations arrive (the
    gateway's webhook retries, a staff click, both at once): the order row is locked, and a paid
    order is returned unchanged. Paying issues the invoice, grants the assets and the licenses
    they carry, and emits ``order.paid`` and ``invoice.issued``."""
    order = _lock_order(order)
    if order.status == Order.Status.PAID:
        return order
    if order.status != Order.Status.PENDING:
        raise Conflict(f"A {order.status} order cannot be paid.", code="order_not_payable")
    now = timezone.now()
    order.status = Order.Status.PAID
    order.paid_at = now
    order.gateway_reference = reference or order.gateway_reference
    order.gateway_fee = gateway_fee_compute(gateway=order.gateway, total=order.total, currency=order.currency)
    order.save(update_fields=["status", "paid_at", "gateway_reference", "gateway_fee", "updated_at"])
    invoice = invoice_issue(order=order, now=now)
    assets = _grant_assets(order=order, now=now, actor=actor, source=source)
    audit_record(
        action=AuditLog.Action.UPDATE,
        resource=order,
        user=actor,
        organization=order.organization,
        changes={
            "status": [Order.Status.PENDING, Order.Status.PAID],
            "gateway_fee": [None, str(order.gateway_fee)],
            "invoice": [None, invoice.invoice_number],
            "assets_granted": [0, len(assets)],
        },
        ip_address=ip_address,
        source=source,
    )
    emit_event("order.paid", organization=order.organization, payload=order_event_data(order))
    transaction.on_commit(lambda: _queue_invoice_send(invoice.pk))
    return order


def _queue_invoice_send(invoice_id) -> None:
    from .tasks import invoice_send

    invoice_send.delay(str(invoice_id))


def _revoke_grants(*, order: Order, reason: str, actor: User | None, source: str) -> int:
    """Revoke the order's live assets and suspend the live licenses they carried."""
    now = timezone.now()
    assets = list(
        CustomerAsset.objects.select_for_update()
        .filter(order=order)
        .exclude(status=CustomerAsset.Status.REVOKED)
        .order_by("pk")
    )
    license_ids = {asset.license_id for asset in assets if asset.license_id}
    CustomerAsset.objects.filter(pk__in=[asset.pk for asset in assets]).update(
        status=CustomerAsset.Status.REVOKED, revoked_at=now, updated_at=now
    )
    for license in License.objects.filter(
        pk__in=license_ids, status__in=[License.Status.ACTIVE, License.Status.TRIAL]
    ).order_by("pk"):
        license_suspend(license=license, reason=reason, actor=actor, source=source)
    return len(assets)


def _close_invoices(*, order: Order, status: str, now) -> list[Invoice]:
    invoices = list(
        Invoice.objects.select_for_update().filter(order=order, status__in=[Invoice.Status.ISSUED, Invoice.Status.PAID])
    )
    event = "invoice.voided" if status == Invoice.Status.VOID else "invoice.credited"
    for invoice in invoices:
        before = invoice.status
        invoice.status = status
        invoice.voided_at = now
        invoice.save(update_fields=["status", "voided_at", "updated_at"])
        audit_record(
            action=AuditLog.Action.UPDATE,
            resource=invoice,
            organization=order.organization,
            changes={"status": [before, status]},
        )
        emit_event(event, organization=order.organization, payload=invoice_event_data(invoice))
    return invoices


def _take_back(*, order: Order, invoice_status: str, reason: str, actor: User | None, source: str) -> int:
    """What a refund or a paid order's cancellation undoes: the assets and their licenses, and
    the invoice (credited or void). Returns how many assets were revoked."""
    revoked = _revoke_grants(
        order=order, reason=reason or f"Order {order.order_number} {order.status}", actor=actor, source=source
    )
    _close_invoices(order=order, status=invoice_status, now=timezone.now())
    return revoked


@transaction.atomic
def order_refund(
    *, order: Order, reason: str = "", actor: User | None = None, source: str = "system", via_gateway: bool = True
) -> Order:
    """Refund a paid order: the gateway gives the money back (``via_gateway``; a refund Stripe
    reports itself does not need it), the assets are revoked, their licenses suspended and the
    invoice credited. A refunded order is returned unchanged."""
    order = _lock_order(order)
    if order.status == Order.Status.REFUNDED:
        return order
    if order.status != Order.Status.PAID:
        raise Conflict(f"Only paid orders can be refunded; this one is {order.status}.", code="order_not_refundable")
    refund_reference = gateway_backend(order.gateway).refund(order=order) if via_gateway else ""
    now = timezone.now()
    order.status = Order.Status.REFUNDED
    order.refunded_at = now
    order.save(update_fields=["status", "refunded_at", "updated_at"])
    revoked = _take_back(order=order, invoice_status=Invoice.Status.CREDITED, reason=reason, actor=actor, source=source)
    audit_record(
        action=AuditLog.Action.UPDATE,
        resource=order,
        user=actor,
        organization=order.organization,
        changes={
            "status": [Order.Status.PAID, Order.Status.REFUNDED],
            "refund_reference": [None, refund_reference],
            "assets_revoked": [None, revoked],
            "reason": [None, reason],
        },
        source=source,
    )
    emit_event("order.refunded", organization=order.organization, payload=order_event_data(order))
    return order


@transaction.atomic
def order_cancel(
    *, order: Order, reason: str = "", actor: User | None = None, source: str = "system", only_pending: bool = False
) -> Order:
    """Cancel an order. A pending one gives its coupon redemption back; a paid one (staff only:
    a payment taken back outside CELAEST) loses its assets and licenses and its invoice is void."""
    order = _lock_order(order)
    if order.status == Order.Status.CANCELLED:
        return order
    before = order.status
    if only_pending and before != Order.Status.PENDING:
        raise Conflict(f"This order is {before}, no longer pending.", code="order_not_cancellable")
    if before not in (Order.Status.PENDING, Order.Status.PAID):
        raise Conflict(f"A {before} order cannot be cancelled.", code="order_not_cancellable")
    now = timezone.now()
    order.status = Order.Status.CANCELLED
    order.cancelled_at = now
    order.save(update_fields=["status", "cancelled_at", "updated_at"])
    if before == Order.Status.PENDING:
        _coupon_release(order=order)
    else:
        _take_back(order=order, invoice_status=Invoice.Status.VOID, reason=reason, actor=actor, source=source)
    audit_record(
        action=AuditLog.Action.UPDATE,
        resource=order,
        user=actor,
        organization=order.organization,
        changes={"status": [before, Order.Status.CANCELLED], "reason": [None, reason]},
        source=source,
    )
    emit_event("order.cancelled", organization=order.organization, payload=order_event_data(order))
    return order


def invoice_resend(*, invoice: Invoice, actor: User | None = None) -> None:
    """Queue the invoice's e-mail again (staff, from the admin), audited."""
    audit_record(
        action=AuditLog.Action.ACTION,
        resource=invoice,
        user=actor,
        organization=invoice.organization,
        changes={"resent": [None, True]},
        source="admin",
    )
    transaction.on_commit(lambda: _queue_invoice_send(invoice.pk))


def invoice_send(*, invoice_id) -> bool:
    """E-mail the invoice to its buyer (the ordering user, copied to the organization's billing
    address): the printable page as the body, the PDF attached. False if the invoice is gone."""
    from django.conf import settings
    from django.core.mail import EmailMultiAlternatives

    from .documents import invoice_html, invoice_pdf

    invoice = Invoice.objects.select_related("order", "organization", "user").filter(pk=invoice_id).first()
    if invoice is None:
        return False
    recipients = [invoice.user.email]
    copy = [invoice.organization.email] if invoice.organization.email not in ("", invoice.user.email) else []
    message = EmailMultiAlternatives(
        subject=f"Invoice {invoice.invoice_number} for order {invoice.order.order_number}",
        body=f"Your invoice {invoice.invoice_number} ({invoice.total} {invoice.currency}) is attached.",
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=recipients,
        cc=copy,
    )
    message.attach_alternative(invoice_html(invoice=invoice), "text/html")
    message.attach(f"{invoice.invoice_number}.pdf", invoice_pdf(invoice=invoice), "application/pdf")
    message.send()
    return True


# --- Stripe webhooks -------------------------------------------------------------------------


def _stripe_order(intent_id: str, metadata) -> Order | None:
    orders = Order.objects.select_related("gateway").filter(gateway__provider=PaymentGateway.Provider.STRIPE)
    order_id = (metadata or {}).get("order_id")
    if order_id:
        try:
            found = orders.filter(pk=order_id).first()
        except (ValueError, DjangoValidationError):
            found = None
        if found is not None:
            return found
    return orders.filter(gateway_reference=intent_id).first() if intent_id else None


def _stripe_payment_alert(*, order: Order, intent_id: str, event_type: str, severity: str, message: str) -> None:
    system_event_record(
        event_type=event_type,
        severity=severity,
        message=message,
        source="billing.stripe_webhook",
        organization=order.organization,
        data={"order": str(order.pk), "payment_intent": intent_id},
    )


def _stripe_payment_succeeded(intent: dict) -> str:
    order = _stripe_order(intent["id"], intent.get("metadata"))
    if order is None:
        return "ignored: unknown order"
    if not gateway_backend(order.gateway).payment_verify(order=order, reference=intent["id"]):
        _stripe_payment_alert(
            order=order,
            intent_id=intent["id"],
            event_type="billing.payment_mismatch",
            severity=SystemEvent.Severity.WARNING,
            message=f"Stripe reported {intent['id']} for {order.order_number}, but it does not pay it in full.",
        )
        return "refused: payment does not match the order"
    try:
        order_mark_paid(order=order, reference=intent["id"], source="webhook")
    except Conflict:
        _stripe_payment_alert(
            order=order,
            intent_id=intent["id"],
            event_type="billing.payment_for_closed_order",
            severity=SystemEvent.Severity.ERROR,
            message=f"Stripe collected {intent['id']} for {order.order_number}, which is {order.status}: refund it.",
        )
        return "refused: order not payable"
    return "paid"


def _stripe_charge_refunded(charge: dict) -> str:
    order = _stripe_order(charge.get("payment_intent") or "", charge.get("metadata"))
    if order is None or order.status != Order.Status.PAID or not charge.get("refunded"):
        return "ignored"
    order_refund(order=order, reason="Refunded in Stripe", source="webhook", via_gateway=False)
    return "refunded"


def _stripe_payment_failed(intent: dict) -> str:
    order = _stripe_order(intent["id"], intent.get("metadata"))
    if order is None:
        return "ignored: unknown order"
    error = intent.get("last_payment_error") or {}
    audit_record(
        action=AuditLog.Action.ACTION,
        resource=order,
        organization=order.organization,
        changes={"payment_failed": [None, error.get("code") or error.get("message") or "failed"]},
        source="webhook",
    )
    return "recorded"


_STRIPE_HANDLERS = {
    "payment_intent.succeeded": _stripe_payment_succeeded,
    "payment_intent.payment_failed": _stripe_payment_failed,
    "charge.refunded": _stripe_charge_refunded,
}


def stripe_event_handle(*, event) -> str:
    """Act on a verified Stripe event; returns what was done (for the log and the response).

    A reported payment is fetched back from Stripe and checked (status, amount, currency, order)
    before the order is marked paid, which happens once however often Stripe retries.
    """
    handler = _STRIPE_HANDLERS.get(event.type)
    return handler(event.data.object.to_dict()) if handler is not None else "ignored"


def order_cancel_stale(*, older_than: timedelta, batch_size: int = 200) -> int:
    """Cancel orders left unpaid for longer than ``older_than``: their coupon redemptions go
    back to the coupon. Each order is cancelled in its own transaction, under its lock, so a
    payment that lands meanwhile wins. Returns how many were cancelled."""
    cutoff = timezone.now() - older_than
    stale = Order.objects.filter(status=Order.Status.PENDING, created_at__lt=cutoff).order_by("created_at")
    cancelled = 0
    for order in stale[:batch_size]:
        try:
            order_cancel(order=order, reason=f"Not paid within {older_than}", source="system", only_pending=True)
        except Conflict:
            continue
        cancelled += 1
    return cancelled
