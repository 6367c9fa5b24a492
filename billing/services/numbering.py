"""Document numbers: gapless ``PREFIX-YYYY-NNNNNN`` sequences per kind of document (orders,
invoices, credit notes) and year."""

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.db.models.functions import Substr

from billing.models import CreditNote, DocumentSequence, Invoice, Order

_DOCUMENT_PREFIXES = {"order": "ORD", "invoice": "INV", "credit_note": "CN"}


_DOCUMENT_MODELS = {
    "order": (Order, "order_number"),
    "invoice": (Invoice, "invoice_number"),
    "credit_note": (CreditNote, "credit_note_number"),
}


def _highest_stored_number(*, model, field: str, stem: str) -> int:
    last = (
        model._base_manager.filter(**{f"{field}__regex": rf"^{stem}[0-9]{{6}}$"})
        .order_by(f"-{field}")
        .values_list(field, flat=True)
        .first()
    )
    return int(last[len(stem) :]) if last else 0


def document_number_next(*, key: str, year: int) -> str:
    """The next ``PREFIX-YYYY-NNNNNN`` number of a kind of document, e.g. ``INV-2026-000001``
    (``document_numbers_reserve`` of one)."""
    return document_numbers_reserve(key=key, year=year, count=1)[0]


def document_numbers_reserve(*, key: str, year: int, count: int) -> list[str]:
    """The next ``count`` consecutive numbers of a kind of document, in one step (a renewal batch
    numbers its invoices at once).

    Call it inside the transaction that stores the documents: the year's sequence row stays
    locked until that transaction ends, so numbers are handed out one block at a time and a
    rollback gives its block back (gapless). A new year starts after the highest number already
    stored (documents loaded by ``seed_demo`` or imported), and numbers taken outside the sequence
    are skipped rather than collided with.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("document numbers must be reserved inside the documents' transaction.")
    model, field = _DOCUMENT_MODELS[key]
    stem = f"{_DOCUMENT_PREFIXES[key]}-{year}-"
    sequences = DocumentSequence.objects.select_for_update()
    sequence = sequences.filter(key=key, year=year).first()
    if sequence is None:
        try:
            with transaction.atomic():
                DocumentSequence.objects.create(
                    key=key, year=year, last_number=_highest_stored_number(model=model, field=field, stem=stem)
                )
        except IntegrityError:
            pass  # a concurrent first allocation of the year created it; its lock orders us
        sequence = sequences.get(key=key, year=year)
    first = sequence.last_number + 1
    block = (f"{stem}{first:06d}", f"{stem}{first + count - 1:06d}")
    if model._base_manager.filter(**{f"{field}__range": block}).exists():
        first = _highest_stored_number(model=model, field=field, stem=stem) + 1
    sequence.last_number = first + count - 1
    sequence.save(update_fields=["last_number", "updated_at"])
    return [f"{stem}{number:06d}" for number in range(first, first + count)]


@transaction.atomic
def document_sequences_sync() -> int:
    """Move every year's sequence past the highest number stored for it, for documents written
    outside the sequence (``seed_demo``, imports). Returns the number of sequences touched."""
    touched = 0
    for key, (model, field) in _DOCUMENT_MODELS.items():
        stem_length = len(_DOCUMENT_PREFIXES[key]) + 1
        highest = (
            model._base_manager.filter(**{f"{field}__regex": rf"^{_DOCUMENT_PREFIXES[key]}-[0-9]{{4}}-[0-9]{{6}}$"})
            .annotate(year=Substr(field, stem_length + 1, 4))
            .values("year")
            .annotate(last=Max(field))
            .order_by("year")
        )
        for row in highest:
            year, last = int(row["year"]), int(row["last"][-6:])
            sequence, _ = DocumentSequence.objects.select_for_update().get_or_create(key=key, year=year)
            if sequence.last_number < last:
                sequence.last_number = last
                sequence.save(update_fields=["last_number", "updated_at"])
                touched += 1
    return touched
