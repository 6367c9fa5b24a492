"""Invoices and credit notes as documents: a printable HTML page and a PDF (reportlab, pure Python).

Both are drawn from the same figures (``invoice_document_context``), amounts shown at the
currency's minor unit.
"""

import io
from decimal import Decimal
from xml.sax.saxutils import escape

from django.template.loader import render_to_string
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from celaest.money import quantize_money

from .models import CreditNote, Invoice


def _money(amount: Decimal, currency: str) -> str:
    return f"{quantize_money(amount, currency):,}"


def _lines(invoice: Invoice) -> list[dict]:
    """An order's invoice shows the order's items; a subscription's its own lines."""
    currency = invoice.currency
    if invoice.order_id is not None:
        return [
            {
                "description": item.description or item.product.name,
                "quantity": item.quantity,
                "unit_price": _money(item.unit_price, currency),
                "total": _money(item.total, currency),
            }
            for item in invoice.order.items.select_related("product").order_by("created_at", "pk")
        ]
    return [
        {
            "description": line.description,
            "quantity": line.quantity.normalize(),
            "unit_price": f"{line.unit_price.normalize():f}",
            "total": _money(line.amount, currency),
        }
        for line in invoice.lines.order_by("position")
    ]


def invoice_document_context(*, invoice: Invoice) -> dict:
    currency = invoice.currency
    return {
        "invoice": invoice,
        "lines": _lines(invoice),
        "reference": f"Order {invoice.order.order_number}" if invoice.order_id else _period_label(invoice),
        "coupon": invoice.coupon or (invoice.order.coupon if invoice.order_id else None),
        "tax_percent": (invoice.billing_details or {}).get("tax_rate_percent") or invoice.tax_rate_percent,
        "amounts": {
            "subtotal": _money(invoice.subtotal, currency),
            "discount": _money(invoice.discount_total, currency),
            "tax": _money(invoice.tax_total, currency),
            "total": _money(invoice.total, currency),
        },
    }


def _period_label(invoice: Invoice) -> str:
    if invoice.period_start and invoice.period_end:
        return f"Subscription {invoice.period_start:%Y-%m-%d} – {invoice.period_end:%Y-%m-%d}"
    return "Subscription"


def invoice_html(*, invoice: Invoice) -> str:
    return render_to_string("billing/invoice.html", invoice_document_context(invoice=invoice))


def _pdf(*, title: str, status: str, reference: str, details: dict, rows: list, total_rows: list) -> bytes:
    """One printed document (invoice or credit note): a title, the buyer, a table of lines and
    the totals below it (the last in bold)."""
    styles = getSampleStyleSheet()
    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        title=title,
        author="CELAEST",
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=18 * mm,
        bottomMargin=18 * mm,
    )
    billed_to = "<br/>".join(
        escape(str(value)) for value in (details.get("name"), details.get("contact"), details.get("email")) if value
    )
    story = [
        Paragraph(escape(title), styles["Title"]),
        Paragraph(escape(status).upper(), styles["Heading3"]),
        Paragraph(escape(reference), styles["Normal"]),
        Spacer(1, 6 * mm),
        Paragraph(f"<b>Billed to</b><br/>{billed_to}", styles["Normal"]),
        Spacer(1, 6 * mm),
    ]
    table_rows = [["Item", "Quantity", "Unit price", "Amount"]]
    table_rows += [[Paragraph(escape(str(row[0])), styles["Normal"]), *row[1:]] for row in rows]
    table_rows += [["", "", label, amount] for label, amount in total_rows]
    table = Table(table_rows, colWidths=[85 * mm, 22 * mm, 32 * mm, 32 * mm], repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, 0), "Helvetica-Bold"),
                ("LINEBELOW", (0, 0), (-1, 0), 0.8, colors.black),
                ("ALIGN", (1, 0), (-1, -1), "RIGHT"),
                ("LINEABOVE", (2, -1), (-1, -1), 1, colors.black),
                ("FONTNAME", (2, -1), (-1, -1), "Helvetica-Bold"),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    story.append(table)
    document.build(story)
    return buffer.getvalue()


def invoice_pdf(*, invoice: Invoice) -> bytes:
    context = invoice_document_context(invoice=invoice)
    amounts = context["amounts"]
    totals = [("Subtotal", amounts["subtotal"])]
    if invoice.discount_total:
        coupon = f" ({context['coupon'].code})" if context["coupon"] else ""
        totals.append((f"Discount{coupon}", f"-{amounts['discount']}"))
    totals += [(f"Tax ({context['tax_percent']}%)", amounts["tax"]), (f"Total {invoice.currency}", amounts["total"])]
    issued = f" · issued {invoice.issued_at:%Y-%m-%d}" if invoice.issued_at else ""
    return _pdf(
        title=f"Invoice {invoice.invoice_number}",
        status=invoice.get_status_display(),
        reference=f"{context['reference']}{issued}",
        details=invoice.billing_details or {},
        rows=[[line["description"], line["quantity"], line["unit_price"], line["total"]] for line in context["lines"]],
        total_rows=totals,
    )


def credit_note_pdf(*, note: CreditNote) -> bytes:
    invoice, currency = note.invoice, note.currency
    return _pdf(
        title=f"Credit note {note.credit_note_number}",
        status=note.get_kind_display(),
        reference=f"Against invoice {invoice.invoice_number} · issued {note.issued_at:%Y-%m-%d}",
        details=invoice.billing_details or {},
        rows=[[note.reason, 1, _money(note.subtotal, currency), _money(note.subtotal, currency)]],
        total_rows=[
            ("Subtotal", _money(note.subtotal, currency)),
            (f"Tax ({invoice.tax_rate_percent}%)", _money(note.tax_total, currency)),
            (f"Total credited {currency}", _money(note.total, currency)),
        ],
    )
