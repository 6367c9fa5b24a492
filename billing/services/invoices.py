"""Invoices: issued when an order is paid, credited or void when it is taken back, and
e-mailed to the buyer (HTML body, PDF attached) by the ``billing.invoice_send`` task."""

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction

from audit.models import AuditLog
from audit.services import audit_record
from billing.documents import invoice_html, invoice_pdf
from billing.models import Invoice, Order
from celaest.celery import app as celery_app
from identity.models import User
from settings_app.events import emit_event

from .event_data import invoice_event_data
from .numbering import document_number_next


def invoice_billing_details(*, organization, contact: str, tax_rate_percent) -> dict[str, str]:
    """Who an invoice is made out to, frozen on it when it is issued."""
    return {
        "name": organization.name,
        "email": organization.email,
        "contact": contact,
        "country": (organization.settings or {}).get("country", ""),
        "tax_id": str((organization.settings or {}).get("tax_id") or ""),
        "tax_rate_percent": str(tax_rate_percent),
    }


def invoice_issue(*, order: Order, now) -> Invoice:
    """The invoice of a paid order, numbered from the year's gapless sequence. The caller holds
    the order's lock."""
    organization = order.organization
    invoice = Invoice.objects.create(
        invoice_number=document_number_next(key="invoice", year=now.year),
        organization=organization,
        order=order,
        user=order.user,
        status=Invoice.Status.PAID,
        currency=order.currency,
        subtotal=order.subtotal,
        discount_total=order.discount_total,
        tax_total=order.tax_total,
        total=order.total,
        billing_details=invoice_billing_details(
            organization=organization,
            contact=order.user.get_full_name() or order.user.email,
            tax_rate_percent=order.tax_rate_percent,
        ),
        issued_at=now,
        paid_at=now,
        gateway=order.gateway,
        gateway_reference=order.gateway_reference,
        coupon=order.coupon,
        tax_rate_percent=order.tax_rate_percent,
        due_at=now,
    )
    audit_record(
        action=AuditLog.Action.CREATE,
        resource=invoice,
        organization=organization,
        changes={"invoice_number": [None, invoice.invoice_number], "total": [None, str(invoice.total)]},
    )
    emit_event("invoice.issued", organization=organization, payload=invoice_event_data(invoice))
    return invoice


def invoices_close(*, order: Order, status: str, now) -> list[Invoice]:
    """Credit or void (``status``) the order's issued or paid invoices when the order is taken
    back (a refund, a paid order cancelled); the caller holds the order's lock."""
    invoices = list(
        Invoice.objects.select_for_update().filter(order=order, status__in=[Invoice.Status.ISSUED, Invoice.Status.PAID])
    )
    event = "invoice.voided" if status == Invoice.Status.VOID else "invoice.credited"
    for invoice in invoices:
        before = invoice.status
        invoice.status = status
        invoice.voided_at = now
        invoice.save(update_fields=["status", "voided_at", "updated_at"])
        audit_record(
            action=AuditLog.Action.UPDATE,
            resource=invoice,
            organization=order.organization,
            changes={"status": [before, status]},
        )
        emit_event(event, organization=order.organization, payload=invoice_event_data(invoice))
    return invoices


def invoice_resend(*, invoice: Invoice, actor: User | None = None) -> None:
    """Queue the invoice's e-mail again (staff, from the admin), audited."""
    audit_record(
        action=AuditLog.Action.ACTION,
        resource=invoice,
        user=actor,
        organization=invoice.organization,
        changes={"resent": [None, True]},
        source="admin",
    )
    transaction.on_commit(lambda: invoice_send_enqueue(invoice.pk))


def invoice_send_enqueue(invoice_id) -> None:
    """Queue the invoice's e-mail (call it from ``transaction.on_commit``). The task is named,
    not imported: ``billing.tasks`` imports these services, and imports the task module in
    ``BillingConfig.ready()`` so the name resolves to the task in every process."""
    celery_app.signature("billing.invoice_send", args=[str(invoice_id)]).delay()


def invoices_send_enqueue(invoice_ids: list) -> None:
    """Queue the e-mails of several invoices (call it from ``transaction.on_commit``): one task
    for one invoice; for a renewal batch one task that queues each invoice's from a worker, so
    the batch does not wait on the broker once per invoice."""
    if len(invoice_ids) == 1:
        invoice_send_enqueue(invoice_ids[0])
    elif invoice_ids:
        celery_app.signature("billing.invoices_send", args=[[str(pk) for pk in invoice_ids]]).delay()


def invoice_send(*, invoice_id) -> bool:
    """E-mail the invoice to its buyer (the ordering user, copied to the organization's billing
    address): the printable page as the body, the PDF attached. False if the invoice is gone."""
    invoice = Invoice.objects.select_related("order", "organization", "user").filter(pk=invoice_id).first()
    if invoice is None:
        return False
    recipients = [invoice.user.email]
    copy = [invoice.organization.email] if invoice.organization.email not in ("", invoice.user.email) else []
    about = f"order {invoice.order.order_number}" if invoice.order_id else "your subscription"
    message = EmailMultiAlternatives(
        subject=f"Invoice {invoice.invoice_number} for {about}",
        body=f"Your invoice {invoice.invoice_number} ({invoice.total} {invoice.currency}) is attached.",
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=recipients,
        cc=copy,
    )
    message.attach_alternative(invoice_html(invoice=invoice), "text/html")
    message.attach(f"{invoice.invoice_number}.pdf", invoice_pdf(invoice=invoice), "application/pdf")
    message.send()
    return True
