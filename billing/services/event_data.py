"""The payloads of billing's platform events (``order.*``, ``invoice.*``, ``subscription.*``):
ids, amounts and states, no personal data."""

from billing.models import Invoice, Order, Subscription


def _iso(moment):
    return moment.isoformat() if moment else None


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
        "order": str(invoice.order_id) if invoice.order_id else None,
        "subscription": str(invoice.subscription_id) if invoice.subscription_id else None,
        "billing_reason": invoice.billing_reason,
        "status": invoice.status,
        "currency": invoice.currency,
        "total": str(invoice.total),
        "issued_at": invoice.issued_at.isoformat() if invoice.issued_at else None,
    }


def subscription_event_data(subscription: Subscription) -> dict:
    return {
        "id": str(subscription.pk),
        "plan": subscription.plan.code,
        "interval": subscription.interval,
        "status": subscription.status,
        "license": str(subscription.license_id),
        "current_period_start": _iso(subscription.current_period_start),
        "current_period_end": _iso(subscription.current_period_end),
        "trial_end": _iso(subscription.trial_end),
        "cancel_at_period_end": subscription.cancel_at_period_end,
    }
