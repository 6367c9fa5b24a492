"""Credit notes: a partial (or whole) credit against a paid invoice — refunded through the
gateway (Stripe: a partial refund of the invoice's payment) or credited to the customer — with
its own gapless ``CN-YYYY-NNNNNN`` numbers. An invoice credited in full is marked credited.

The tax credited is the invoice's rate on the amount credited; what an invoice can still be
credited is what it charged net of discount, less the credit notes already issued against it.
"""

from decimal import Decimal

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from audit.models import AuditLog
from audit.services import audit_record
from billing.gateways import gateway_backend
from billing.models import CreditNote, Invoice, PaymentGateway
from celaest.errors import Conflict, InvalidInput
from celaest.money import quantize_money
from identity.models import User
from settings_app.events import emit_event

from .event_data import invoice_event_data
from .numbering import document_number_next

_HUNDRED = Decimal("100")


def invoice_creditable(invoice: Invoice) -> Decimal:
    """What is left to credit on ``invoice``, before tax."""
    credited = invoice.credit_notes.aggregate(total=Sum("subtotal"))["total"] or Decimal("0")
    return invoice.subtotal - invoice.discount_total - credited


@transaction.atomic
def credit_note_issue(
    *,
    invoice: Invoice,
    amount: Decimal,
    reason: str,
    refund: bool = False,
    actor: User | None = None,
    source: str = "system",
) -> CreditNote:
    """Credit ``amount`` (before tax) of a paid invoice; ``refund`` gives the money back through
    the invoice's gateway. The invoice row is locked, so concurrent credits never exceed it."""
    invoice = (
        Invoice.objects.select_for_update(of=("self",)).select_related("gateway", "organization").get(pk=invoice.pk)
    )
    if invoice.status not in (Invoice.Status.PAID, Invoice.Status.CREDITED):
        raise Conflict(f"Only a paid invoice can be credited; this one is {invoice.status}.", code="invoice_not_paid")
    amount = quantize_money(amount, invoice.currency)
    remaining = invoice_creditable(invoice)
    if amount <= 0 or amount > remaining:
        raise InvalidInput(
            f"The amount must be more than 0 and at most {remaining}.",
            code="credit_exceeds_invoice",
            details={"amount": [f"At most {remaining}."]},
        )
    tax = quantize_money(amount * invoice.tax_rate_percent / _HUNDRED, invoice.currency)
    note = CreditNote(
        credit_note_number=document_number_next(key="credit_note", year=timezone.now().year),
        organization=invoice.organization,
        invoice=invoice,
        user=actor if actor is not None and actor.is_authenticated else None,
        kind=CreditNote.Kind.REFUND if refund else CreditNote.Kind.CREDIT,
        currency=invoice.currency,
        subtotal=amount,
        tax_total=tax,
        total=amount + tax,
        reason=reason[:255] or "Credit",
    )
    if refund and invoice.gateway is not None and invoice.gateway.provider == PaymentGateway.Provider.STRIPE:
        note.gateway_reference = gateway_backend(invoice.gateway).invoice_refund(invoice=invoice, note=note)
    note.save(force_insert=True)
    if amount == remaining and invoice.status != Invoice.Status.CREDITED:
        invoice.status = Invoice.Status.CREDITED
        invoice.voided_at = note.issued_at
        invoice.save(update_fields=["status", "voided_at", "updated_at"])
    audit_record(
        action=AuditLog.Action.CREATE,
        resource=note,
        user=actor,
        organization=invoice.organization,
        changes={
            "credit_note_number": [None, note.credit_note_number],
            "invoice": [None, invoice.invoice_number],
            "total": [None, str(note.total)],
            "kind": [None, note.kind],
        },
        source=source,
    )
    emit_event(
        "invoice.credited",
        organization=invoice.organization,
        payload={
            **invoice_event_data(invoice),
            "credit_note": {"id": str(note.pk), "number": note.credit_note_number, "total": str(note.total)},
        },
    )
    return note
