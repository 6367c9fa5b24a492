"""Credit notes: partial credits and refunds against a paid invoice, from their own gapless
sequence, never more than the invoice charged; issued from the admin through the service."""

from decimal import Decimal as D  # noqa: N817 - amounts read as D("49.00")

import pytest

from billing.models import CreditNote, Invoice
from billing.services.credit_notes import credit_note_issue
from billing.services.renewals import invoice_collect
from billing.services.subscription_invoices import subscription_invoice_paid
from billing.services.subscriptions import subscription_create
from celaest.errors import Conflict, InvalidInput
from identity.models import User
from tests import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def invoice():
    f.PaymentGatewayFactory(code="manual", provider="manual")
    f.TaxRateFactory(code="es-vat", rate=D("21.000"), country_code="ES")
    plan = f.SubscriptionPlanFactory(price_monthly=D("49.00"))
    owner = f.UserFactory(role=User.Role.OWNER, organization=f.OrganizationFactory(settings={"country": "ES"}))
    subscription = subscription_create(
        organization=owner.organization, user=owner, plan=plan, interval="month", gateway_code="manual"
    )
    return subscription_invoice_paid(invoice=subscription.invoices.get(), reference="transfer")


def test_partial_credits_are_numbered_gaplessly_and_never_exceed_the_invoice(invoice):
    first = credit_note_issue(invoice=invoice, amount=D("10.00"), reason="Outage credit")
    second = credit_note_issue(invoice=invoice, amount=D("30.00"), reason="Goodwill")
    year = first.issued_at.year
    assert (first.credit_note_number, second.credit_note_number) == (f"CN-{year}-000001", f"CN-{year}-000002")
    assert (first.subtotal, first.tax_total, first.total, first.kind) == (D("10.00"), D("2.10"), D("12.10"), "credit")
    with pytest.raises(InvalidInput) as excinfo:
        credit_note_issue(invoice=invoice, amount=D("9.01"), reason="Too much")  # 49 − 40 = 9 left
    assert excinfo.value.code == "credit_exceeds_invoice"
    assert CreditNote.objects.count() == 2
    invoice.refresh_from_db()
    assert invoice.status == "paid"
    credit_note_issue(invoice=invoice, amount=D("9.00"), reason="The rest")
    invoice.refresh_from_db()
    assert invoice.status == "credited"  # credited in full


@pytest.mark.parametrize("amount", [D("0"), D("-1")])
def test_a_credit_must_be_positive(invoice, amount):
    with pytest.raises(InvalidInput):
        credit_note_issue(invoice=invoice, amount=amount, reason="Nothing")
    assert not CreditNote.objects.exists()


def test_an_unpaid_invoice_cannot_be_credited():
    f.PaymentGatewayFactory(code="manual", provider="manual")
    owner = f.UserFactory(role=User.Role.OWNER)
    subscription = subscription_create(
        organization=owner.organization,
        user=owner,
        plan=f.SubscriptionPlanFactory(),
        interval="month",
        gateway_code="manual",
    )
    with pytest.raises(Conflict):
        credit_note_issue(invoice=subscription.invoices.get(), amount=D("1.00"), reason="Not paid")


def test_a_partial_refund_goes_back_through_stripe(stripe_api):
    f.PaymentGatewayFactory(code="stripe", name="Card", provider="stripe")
    owner = f.UserFactory(role=User.Role.OWNER)
    f.PaymentMethodFactory(user=owner, is_default=True, gateway_token="pm_card_visa")
    subscription = subscription_create(
        organization=owner.organization,
        user=owner,
        plan=f.SubscriptionPlanFactory(price_monthly=D("49.00")),
        interval="month",
        gateway_code="stripe",
    )
    invoice_collect(invoice_id=subscription.invoices.get().pk)
    note = credit_note_issue(
        invoice=Invoice.objects.get(subscription=subscription), amount=D("12.34"), reason="Partial", refund=True
    )
    [refund] = stripe_api.refunds.values()
    assert (refund["amount"], note.kind, note.gateway_reference) == (1234, "refund", refund["id"])


def test_staff_issue_a_credit_note_from_the_admin(client, invoice):
    client.force_login(f.StaffUserFactory())
    too_much = client.post(
        "/admin/billing/creditnote/add/", {"invoice": invoice.pk, "reason": "Goodwill", "amount": "50.00"}
    )
    assert too_much.status_code == 200 and not CreditNote.objects.exists()
    response = client.post(
        "/admin/billing/creditnote/add/", {"invoice": invoice.pk, "reason": "Goodwill", "amount": "5.00"}
    )
    assert response.status_code == 302
    note = CreditNote.objects.get()
    assert (note.total, note.reason) == (D("6.05"), "Goodwill")
    assert client.get(f"/admin/billing/creditnote/{note.pk}/change/").status_code == 200
