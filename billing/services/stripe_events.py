"""Stripe's webhook events: a reported payment is checked with Stripe before the order (or the
subscription invoice) is paid, a refund made in Stripe refunds the order, a failed payment is
recorded."""

from django.core.exceptions import ValidationError as DjangoValidationError

from audit.models import AuditLog, SystemEvent
from audit.services import audit_record, system_event_record
from billing.gateways import gateway_backend
from billing.models import Invoice, Order, PaymentGateway
from celaest.errors import Conflict

from .payments import order_mark_paid, order_refund
from .subscription_invoices import subscription_invoice_paid


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


def _stripe_invoice(metadata) -> Invoice | None:
    """The subscription invoice an off-session charge was made for (its ``invoice_id``)."""
    invoice_id = (metadata or {}).get("invoice_id")
    if not invoice_id:
        return None
    try:
        return (
            Invoice.objects.select_related("gateway")
            .filter(pk=invoice_id, subscription__isnull=False, gateway__provider=PaymentGateway.Provider.STRIPE)
            .first()
        )
    except (ValueError, DjangoValidationError):
        return None


def _stripe_invoice_paid(invoice: Invoice, intent: dict) -> str:
    """A subscription invoice paid in Stripe (a charge completed later, or retried from Stripe's
    dashboard): checked with Stripe, then paid once; dunning's suspension is lifted."""
    if not gateway_backend(invoice.gateway).invoice_payment_verify(invoice=invoice, reference=intent["id"]):
        return "refused: payment does not match the invoice"
    try:
        subscription_invoice_paid(invoice=invoice, reference=intent["id"], source="webhook")
    except Conflict:
        return "refused: invoice not payable"
    return "paid"


def _stripe_payment_succeeded(intent: dict) -> str:
    invoice = _stripe_invoice(intent.get("metadata"))
    if invoice is not None:
        return _stripe_invoice_paid(invoice, intent)
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
