"""The payloads of billing's platform events (``order.*``, ``invoice.*``): ids, amounts and
states, no personal data."""

from billing.models import Invoice, Order


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
