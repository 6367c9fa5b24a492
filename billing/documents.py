"""Invoices as documents: a printable HTML page and a PDF (reportlab, pure Python).

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

from .models import Invoice


def _money(amount: Decimal, currency: str) -> str:
    return f"{quantize_money(amount, currency):,}"


def invoice_document_context(*, invoice: Invoice) -> dict:
    currency = invoice.currency
    lines = [
        {
            "description": item.description or item.product.name,
            "quantity": item.quantity,
            "unit_price": _money(item.unit_price, currency),
            "total": _money(item.total, currency),
        }
        for item in invoice.order.items.select_related("product").order_by("created_at", "pk")
    ]
    return {
        "invoice": invoice,
        "lines": lines,
        "tax_percent": (invoice.billing_details or {}).get("tax_rate_percent") or invoice.order.tax_rate_percent,
        "amounts": {
            "subtotal": _money(invoice.subtotal, currency),
            "discount": _money(invoice.discount_total, currency),
            "tax": _money(invoice.tax_total, currency),
            "total": _money(invoice.total, currency),
        },
    }


def invoice_html(*, invoice: Invoice) -> str:
    return render_to_string("billing/invoice.html", invoice_document_context(invoice=invoice))


def invoice_pdf(*, invoice: Invoice) -> bytes:
    context = invoice_document_context(invoice=invoice)
    details = invoice.billing_details or {}
    styles = getSampleStyleSheet()
    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        title=f"Invoice {invoice.invoice_number}",
        author="CELAEST",
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=18 * mm,
        bottomMargin=18 * mm,
    )
    issued = f" · issued {invoice.issued_at:%Y-%m-%d}" if invoice.issued_at else ""
    billed_to = "<br/>".join(
        escape(str(value)) for value in (details.get("name"), details.get("contact"), details.get("email")) if value
    )
    story = [
        Paragraph(f"Invoice {escape(invoice.invoice_number)}", styles["Title"]),
        Paragraph(escape(invoice.get_status_display()).upper(), styles["Heading3"]),
        Paragraph(f"Order {escape(invoice.order.order_number)}{issued}", styles["Normal"]),
        Spacer(1, 6 * mm),
        Paragraph(f"<b>Billed to</b><br/>{billed_to}", styles["Normal"]),
        Spacer(1, 6 * mm),
    ]
    amounts = context["amounts"]
    rows = [["Item", "Quantity", "Unit price", "Amount"]]
    rows += [
        [Paragraph(escape(line["description"]), styles["Normal"]), line["quantity"], line["unit_price"], line["total"]]
        for line in context["lines"]
    ]
    rows.append(["", "", "Subtotal", amounts["subtotal"]])
    if invoice.discount_total:
        rows.append(["", "", "Discount", f"-{amounts['discount']}"])
    rows.append(["", "", f"Tax ({context['tax_percent']}%)", amounts["tax"]])
    rows.append(["", "", f"Total {invoice.currency}", amounts["total"]])
    table = Table(rows, colWidths=[85 * mm, 22 * mm, 32 * mm, 32 * mm], repeatRows=1)
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
