"""Invoices and credit notes as documents: one template each, rendered to a printable HTML page
and, by WeasyPrint, to the PDF from that same HTML — so the two can never say different things.

Both name the seller (``SELLER_NAME``, ``SELLER_ADDRESS``, ``SELLER_EMAIL``, ``SELLER_TAX_IDS``
from the environment) and the buyer as frozen on the document when it was issued; amounts are
shown at the currency's minor unit. The PDF is rendered without fetching anything: the template
carries its styles, and any URL it might name is refused.
"""

from decimal import Decimal

from django.conf import settings
from django.template.loader import render_to_string
from weasyprint import HTML
from weasyprint.urls import URLFetcher

from celaest.money import quantize_money

from .models import CreditNote, Invoice


def _money(amount: Decimal, currency: str) -> str:
    return f"{quantize_money(amount, currency):,}"


def seller_identity() -> dict:
    return {
        "name": settings.SELLER_NAME,
        "address": settings.SELLER_ADDRESS,
        "email": settings.SELLER_EMAIL,
        "tax_ids": settings.SELLER_TAX_IDS,
    }


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


def _period_label(invoice: Invoice) -> str:
    if invoice.period_start and invoice.period_end:
        return f"Subscription {invoice.period_start:%Y-%m-%d} – {invoice.period_end:%Y-%m-%d}"
    return "Subscription"


def invoice_document_context(*, invoice: Invoice) -> dict:
    currency = invoice.currency
    return {
        "invoice": invoice,
        "seller": seller_identity(),
        "details": invoice.billing_details or {},
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


def invoice_html(*, invoice: Invoice, pdf_url: str = "") -> str:
    """The printable page; ``pdf_url`` adds a link to the PDF (where the page is served)."""
    return render_to_string("billing/invoice.html", {**invoice_document_context(invoice=invoice), "pdf_url": pdf_url})


def credit_note_html(*, note: CreditNote) -> str:
    invoice, currency = note.invoice, note.currency
    context = {
        "note": note,
        "seller": seller_identity(),
        "details": invoice.billing_details or {},
        "tax_percent": invoice.tax_rate_percent,
        "amounts": {
            "subtotal": _money(note.subtotal, currency),
            "tax": _money(note.tax_total, currency),
            "total": _money(note.total, currency),
        },
    }
    return render_to_string("billing/credit_note.html", context)


#: allows no protocol at all: a URL in a document (an image a name smuggled in) is never fetched
_NO_FETCHING = URLFetcher(allowed_protocols=frozenset(), timeout=1)


def html_to_pdf(html: str) -> bytes:
    """The PDF of a document's HTML, printed as a browser prints it (``@media print``)."""
    return HTML(string=html, url_fetcher=_NO_FETCHING).write_pdf()


def invoice_pdf(*, invoice: Invoice) -> bytes:
    return html_to_pdf(invoice_html(invoice=invoice))


def credit_note_pdf(*, note: CreditNote) -> bytes:
    return html_to_pdf(credit_note_html(note=note))
