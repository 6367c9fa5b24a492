"""Orders left unpaid: cancelled after a while, their coupon redemptions given back."""

from datetime import timedelta

from django.utils import timezone

from billing.models import Order
from celaest.errors import Conflict

from .payments import order_cancel


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
