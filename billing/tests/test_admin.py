"""The billing admin: order detail, staff actions through the services, coupon usage, revenue."""

import re
from decimal import Decimal

import pytest
from django.urls import reverse

from audit.models import AuditLog
from billing.models import Invoice, Order
from billing.services.checkout import order_checkout
from billing.services.payments import order_mark_paid
from billing.tasks import invoice_send
from identity.models import User
from tests import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    client.force_login(User.objects.create_superuser(email="root@billing-admin.invalid", password="x-not-used-1"))
    return client


@pytest.fixture
def order():
    owner = f.UserFactory(role=User.Role.OWNER, organization=f.OrganizationFactory(settings={"country": "US"}))
    f.PaymentGatewayFactory(code="manual")
    f.CouponFactory(code="ADMIN10", discount_value=Decimal("10"))
    product = f.ProductFactory(price=Decimal("40.00"), name="Desk Pro")
    placed, _ = order_checkout(user=owner, items=[(product, 2)], gateway_code="manual", coupon_code="ADMIN10")
    return placed


def _action(client, model_url, action, objects):
    return client.post(
        reverse(model_url), {"action": action, "_selected_action": [str(o.pk) for o in objects]}, follow=True
    )


def test_mark_paid_refund_and_resend(staff_client, order, mailoutbox, django_capture_on_commit_callbacks):
    _action(staff_client, "admin:billing_order_changelist", "mark_paid", [order])
    order.refresh_from_db()
    assert order.status == Order.Status.PAID
    invoice = Invoice.objects.get(order=order)
    assert AuditLog.objects.filter(resource_id=str(order.pk), source="admin").exists()

    with django_capture_on_commit_callbacks() as callbacks:
        _action(staff_client, "admin:billing_order_changelist", "resend_invoice", [order])
    assert len(callbacks) == 1
    assert invoice_send(str(invoice.pk)) is True  # what the queued task does
    assert mailoutbox[-1].attachments[0][0] == f"{invoice.invoice_number}.pdf"

    _action(staff_client, "admin:billing_order_changelist", "refund", [order])
    order.refresh_from_db()
    assert order.status == Order.Status.REFUNDED
    assert Invoice.objects.get(order=order).status == Invoice.Status.CREDITED


def test_card_orders_are_not_marked_paid_by_hand(staff_client, order):
    stripe = f.PaymentGatewayFactory(code="stripe", provider="stripe")
    Order.objects.filter(pk=order.pk).update(gateway=stripe)
    response = _action(staff_client, "admin:billing_order_changelist", "mark_paid", [order])
    assert "skipped" in response.content.decode()
    order.refresh_from_db()
    assert order.status == Order.Status.PENDING


def test_order_page_shows_items_invoice_and_payment_state(staff_client, order):
    page = staff_client.get(reverse("admin:billing_order_change", args=[order.pk])).content.decode()
    assert "Desk Pro" in page and "Awaiting a bank transfer" in page and order.order_number in page
    order_mark_paid(order=order)
    page = staff_client.get(reverse("admin:billing_order_change", args=[order.pk])).content.decode()
    invoice = Invoice.objects.get(order=order)
    assert invoice.invoice_number in page and "Paid " in page
    assert re.search(r'Paid <time class="cel-time" datetime="[^"]+" title="[^"]+">just now</time> via', page)
    assert staff_client.get(reverse("admin:billing_order_add")).status_code == 403
    document = staff_client.get(reverse("admin:billing_invoice_document", args=[invoice.pk]))
    assert invoice.invoice_number in document.content.decode()
    pdf = staff_client.get(reverse("admin:billing_invoice_document", args=[invoice.pk]), {"pdf": 1})
    assert pdf.content.startswith(b"%PDF")


def test_coupon_usage_and_revenue_by_month(staff_client, order):
    order_mark_paid(order=order)
    coupons = staff_client.get(reverse("admin:billing_coupon_changelist")).content.decode()
    assert "ADMIN10" in coupons and f"coupon__id__exact={order.coupon_id}" in coupons
    assert "8.0000" in coupons  # 10 % of 80.00, on paid orders
    revenue = staff_client.get(reverse("admin:billing_order_revenue"))
    assert revenue.status_code == 200
    [row] = revenue.context["rows"]
    assert (row["orders"], row["gross"], row["currency"]) == (1, Decimal("72.0000"), "USD")
    assert (
        reverse("admin:billing_order_revenue")
        in staff_client.get(reverse("admin:billing_order_changelist")).content.decode()
    )
