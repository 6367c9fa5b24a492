"""The payment of an order and what undoes it: paid exactly once (invoice, assets, the licenses
they carry), refunded through the gateway, or cancelled (a pending order gives its coupon
redemption back; a paid one loses its grants)."""

from django.db import transaction
from django.utils import timezone

from audit.models import AuditLog
from audit.services import audit_record
from billing.gateways import gateway_backend
from billing.models import Invoice, Order
from billing.pricing import gateway_fee_compute
from celaest.errors import Conflict
from identity.models import User
from licensing.models import License
from licensing.services import license_issue, license_suspend
from marketplace.models import CustomerAsset
from marketplace.services import customer_assets_grant, customer_assets_revoke
from settings_app.events import emit_event

from .catalogue import coupon_release
from .event_data import order_event_data
from .invoices import invoice_issue, invoice_send_enqueue, invoices_close


def _lock_order(order: Order) -> Order:
    return (
        Order.objects.select_for_update(of=("self",)).select_related("gateway", "organization", "user").get(pk=order.pk)
    )


def _grant_assets(*, order: Order, now, actor: User | None, source: str) -> list[CustomerAsset]:
    """One asset per unit bought; a unit of a product that carries a plan also gets a license."""
    grants = []
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
            grants.append((product, license))
    return customer_assets_grant(order=order, grants=grants, now=now)


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
    transaction.on_commit(lambda: invoice_send_enqueue(invoice.pk))
    return order


def _revoke_grants(*, order: Order, reason: str, actor: User | None, source: str) -> int:
    """Revoke the order's live assets and suspend the live licenses they carried."""
    assets = customer_assets_revoke(order=order, now=timezone.now())
    license_ids = {asset.license_id for asset in assets if asset.license_id}
    for license in License.objects.filter(
        pk__in=license_ids, status__in=[License.Status.ACTIVE, License.Status.TRIAL]
    ).order_by("pk"):
        license_suspend(license=license, reason=reason, actor=actor, source=source)
    return len(assets)


def _take_back(*, order: Order, invoice_status: str, reason: str, actor: User | None, source: str) -> int:
    """What a refund or a paid order's cancellation undoes: the assets and their licenses, and
    the invoice (credited or void). Returns how many assets were revoked."""
    revoked = _revoke_grants(
        order=order, reason=reason or f"Order {order.order_number} {order.status}", actor=actor, source=source
    )
    invoices_close(order=order, status=invoice_status, now=timezone.now())
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
        coupon_release(order=order)
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
