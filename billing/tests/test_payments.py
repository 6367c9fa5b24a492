"""Paying an order — exactly once, however many confirmations arrive — and taking it back:
invoices with gapless numbers, customer assets, licenses, events; refunds and cancellations;
the invoice as HTML and PDF."""

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from billing.models import Invoice, Order
from billing.services.checkout import order_checkout
from billing.services.invoices import invoice_send
from billing.services.numbering import document_sequences_sync
from billing.services.payments import order_cancel, order_mark_paid, order_refund
from celaest.errors import Conflict
from identity.models import User
from licensing.models import License
from marketplace.models import CustomerAsset
from settings_app.models import WebhookDelivery
from tests import factories as f
from tests.clients import client_as

D = Decimal


def _order(*, user, quantity=2, plan=True, price="50.00"):
    plan_obj = f.SubscriptionPlanFactory() if plan else None
    product = f.ProductFactory(
        price=D(price), plan=plan_obj, license_term_days=365 if plan else None, asset_term_days=30
    )
    f.PaymentGatewayFactory(code="manual", fee_percentage=D("1.50"))
    order, _ = order_checkout(user=user, items=[(product, quantity)], gateway_code="manual")
    return order


@pytest.fixture
def owner():
    return f.UserFactory(role=User.Role.OWNER, organization=f.OrganizationFactory(settings={"country": "US"}))


@pytest.mark.django_db
def test_paying_issues_invoice_assets_and_licenses(owner):
    f.WebhookFactory(organization=owner.organization, user=owner, events=["order.paid", "invoice.issued"])
    order = _order(user=owner)
    paid = order_mark_paid(order=order, reference="bank-123", actor=owner, source="admin")
    assert paid.status == Order.Status.PAID and paid.paid_at is not None
    assert paid.gateway_fee == D("1.50")  # 1.5 % of 100.00
    invoice = Invoice.objects.get(order=order)
    assert invoice.invoice_number == f"INV-{timezone.now().year}-000001"
    assert (invoice.total, invoice.status) == (order.total, Invoice.Status.PAID)
    assets = CustomerAsset.objects.filter(order=order)
    assert assets.count() == 2 and all(a.status == "active" and a.expires_at for a in assets)
    licenses = License.objects.filter(customer_assets__order=order)
    assert licenses.count() == 2 and all(lic.status == "active" and lic.expires_at for lic in licenses)
    assert set(WebhookDelivery.objects.values_list("event_type", flat=True)) == {"order.paid", "invoice.issued"}


@pytest.mark.django_db
def test_paying_again_changes_nothing_and_closed_orders_cannot_be_paid(owner):
    order = _order(user=owner, plan=False)
    order_mark_paid(order=order)
    order_mark_paid(order=order)
    assert Invoice.objects.filter(order=order).count() == 1
    assert CustomerAsset.objects.filter(order=order).count() == 2
    cancelled = _order(user=owner, plan=False)
    order_cancel(order=cancelled)
    with pytest.raises(Conflict):
        order_mark_paid(order=cancelled)


@pytest.mark.django_db
def test_refund_revokes_assets_suspends_licenses_and_credits_the_invoice(owner):
    order = _order(user=owner)
    order_mark_paid(order=order)
    f.WebhookFactory(organization=owner.organization, user=owner, events=["*"])
    order_refund(order=order, reason="asked nicely", actor=f.StaffUserFactory(), source="admin")
    order.refresh_from_db()
    assert order.status == Order.Status.REFUNDED and order.refunded_at is not None
    assert set(CustomerAsset.objects.filter(order=order).values_list("status", flat=True)) == {"revoked"}
    assert set(License.objects.filter(customer_assets__order=order).values_list("status", flat=True)) == {"suspended"}
    assert Invoice.objects.get(order=order).status == Invoice.Status.CREDITED
    events = set(WebhookDelivery.objects.values_list("event_type", flat=True))
    assert {"order.refunded", "invoice.credited", "license.suspended"} <= events
    order_refund(order=order)  # a second refund is a no-op
    with pytest.raises(Conflict):
        order_refund(order=_order(user=owner))  # pending: nothing to refund


@pytest.mark.django_db
def test_cancelling_a_paid_order_voids_its_invoice(owner):
    order = _order(user=owner)
    order_mark_paid(order=order)
    order_cancel(order=order, reason="chargeback")
    assert Invoice.objects.get(order=order).status == Invoice.Status.VOID
    assert not CustomerAsset.objects.filter(order=order, status="active").exists()


@pytest.mark.django_db
def test_invoice_numbers_continue_after_numbers_stored_outside_the_sequence(owner):
    year = timezone.now().year
    f.InvoiceFactory(invoice_number=f"INV-{year}-000041")
    order = _order(user=owner, plan=False)
    order_mark_paid(order=order)
    assert Invoice.objects.get(order=order).invoice_number == f"INV-{year}-000042"


@pytest.mark.django_db
def test_invoice_send_mails_the_pdf(owner):
    order = _order(user=owner, plan=False)
    order_mark_paid(order=order)
    invoice = Invoice.objects.get(order=order)
    assert invoice_send(invoice_id=invoice.pk) is True
    message = mail.outbox[-1]
    assert message.to == [owner.email] and invoice.invoice_number in message.subject
    name, content, mimetype = message.attachments[0]
    assert mimetype == "application/pdf" and content.startswith(b"%PDF")


@pytest.mark.django_db
def test_invoice_html_and_pdf_for_the_owner_only(owner):
    order = _order(user=owner, plan=False, price="1234.50")
    order_mark_paid(order=order)
    invoice = Invoice.objects.get(order=order)
    client = client_as(owner)
    page = client.get(f"/api/v1/invoices/{invoice.pk}/html")
    assert page.status_code == 200 and page["Content-Type"].startswith("text/html")
    html = page.content.decode()
    assert invoice.invoice_number in html and "2,469.00" in html and order.order_number in html
    pdf = client.get(f"/api/v1/invoices/{invoice.pk}/pdf")
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
    assert f'filename="{invoice.invoice_number}.pdf"' in pdf["Content-Disposition"]
    stranger = f.UserFactory(role=User.Role.OWNER)
    assert client_as(stranger).get(f"/api/v1/invoices/{invoice.pk}/pdf").status_code == 404
    assert APIClient().get(f"/api/v1/invoices/{invoice.pk}/html").status_code == 401


# --- concurrency -----------------------------------------------------------------------------


def _threads(fn, args, workers=20):
    def run(arg):
        try:
            return fn(arg)
        except Conflict as exc:
            return exc.code
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(run, args))


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_confirmations_pay_once():
    owner = f.UserFactory(role=User.Role.OWNER)
    order = _order(user=owner, quantity=3)
    f.WebhookFactory(organization=owner.organization, user=owner, events=["order.paid", "invoice.issued"])

    outcomes = _threads(lambda _: order_mark_paid(order=order, reference="pi_1").status, range(20))
    assert outcomes == ["paid"] * 20
    assert Invoice.objects.filter(order=order).count() == 1
    assert CustomerAsset.objects.filter(order=order).count() == 3
    assert License.objects.filter(organization=owner.organization).count() == 3
    assert WebhookDelivery.objects.filter(event_type="order.paid").count() == 1
    assert WebhookDelivery.objects.filter(event_type="invoice.issued").count() == 1


@pytest.mark.django_db(transaction=True)
def test_invoice_numbers_are_gapless_under_concurrency():
    owner = f.UserFactory(role=User.Role.OWNER)
    orders = [_order(user=owner, quantity=1, plan=False) for _ in range(15)]
    _threads(lambda order: order_mark_paid(order=order), orders, workers=15)
    numbers = sorted(int(n[-6:]) for n in Invoice.objects.values_list("invoice_number", flat=True))
    assert numbers == list(range(1, 16))


@pytest.mark.django_db
def test_sequences_sync_moves_past_numbers_stored_outside_them(owner):
    from billing.models import DocumentSequence

    f.OrderFactory(order_number="ORD-2024-000300")
    f.InvoiceFactory(invoice_number="INV-2024-000120")
    f.InvoiceFactory(invoice_number="INV-2024-000007")
    assert document_sequences_sync() >= 2
    sequences = {(s.key, s.year): s.last_number for s in DocumentSequence.objects.filter(year=2024)}
    assert sequences == {("order", 2024): 300, ("invoice", 2024): 120}
    assert document_sequences_sync() == 0
