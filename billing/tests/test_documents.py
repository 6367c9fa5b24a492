"""Invoices and credit notes are one template each: the HTML page and the PDF WeasyPrint renders
from it name the seller and its tax ids (configuration), the buyer, the lines and the coupon."""

from decimal import Decimal as D  # noqa: N817 - amounts read as D("49.00")

import pytest

from billing.documents import credit_note_html, credit_note_pdf, invoice_html, invoice_pdf
from billing.services.credit_notes import credit_note_issue
from billing.services.subscription_invoices import subscription_invoice_paid
from billing.services.subscriptions import subscription_create
from identity.models import User
from tests import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def seller(settings):
    settings.SELLER_NAME = "CELAEST Software S.L."
    settings.SELLER_ADDRESS = ["Calle Mayor 1", "28013 Madrid"]
    settings.SELLER_EMAIL = "billing@celaest.example"
    settings.SELLER_TAX_IDS = ["VAT: ESB12345678"]


@pytest.fixture
def invoice(seller):
    f.PaymentGatewayFactory(code="manual", provider="manual")
    f.TaxRateFactory(code="es-vat", rate=D("21.000"), country_code="ES")
    f.CouponFactory(code="WELCOME", discount_value=D("10"))
    organization = f.OrganizationFactory(name="Acme <Labs>", settings={"country": "ES", "tax_id": "ESB87654321"})
    owner = f.UserFactory(role=User.Role.OWNER, organization=organization)
    subscription = subscription_create(
        organization=organization,
        user=owner,
        plan=f.SubscriptionPlanFactory(name="Pro", price_monthly=D("49.00")),
        interval="month",
        gateway_code="manual",
        coupon_code="WELCOME",
    )
    return subscription_invoice_paid(invoice=subscription.invoices.get(), reference="transfer")


def test_the_invoice_names_seller_buyer_lines_and_coupon(invoice):
    html = invoice_html(invoice=invoice)
    for text in ("CELAEST Software S.L.", "Calle Mayor 1", "VAT: ESB12345678", "Tax id ESB87654321", "WELCOME"):
        assert text in html
    assert "Acme &lt;Labs&gt;" in html  # the buyer's name is escaped, never markup
    assert "−4.90" in html and "53.36" in html  # 49 − 10% = 44.10, tax 9.26
    pdf = invoice_pdf(invoice=invoice)
    assert pdf.startswith(b"%PDF") and pdf.rstrip().endswith(b"%%EOF")


def test_an_orders_invoice_renders_too(seller):
    order_invoice = f.InvoiceFactory()
    f.OrderItemFactory(order=order_invoice.order, description="Desktop app")
    assert "Desktop app" in invoice_html(invoice=order_invoice)
    assert f"Order {order_invoice.order.order_number}" in invoice_html(invoice=order_invoice)
    assert invoice_pdf(invoice=order_invoice).startswith(b"%PDF")


def test_a_credit_note_is_rendered_from_its_template(invoice):
    note = credit_note_issue(invoice=invoice, amount=D("5.00"), reason="Outage credit")
    html = credit_note_html(note=note)
    assert note.credit_note_number in html and invoice.invoice_number in html and "VAT: ESB12345678" in html
    assert "6.05" in html
    assert credit_note_pdf(note=note).startswith(b"%PDF")
