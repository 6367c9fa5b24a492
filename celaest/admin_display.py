"""How the admin shows a value staff read at a glance: keys and ids short with a copy button, times
humanised with the exact value on hover, money with its currency and the currency's decimals,
statuses as coloured badges.

``CelaestModelAdmin`` applies them to the columns of every changelist by the field's kind
(``list_column``), so a model added later reads the same; admins and pages call them directly for
computed values. The copy buttons work through ``backoffice/admin.js`` (no inline script).
"""

import functools
from datetime import datetime
from decimal import Decimal

from django.db import models
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.timesince import timesince, timeuntil

from celaest.money import DEFAULT_CURRENCY, minor_units

EMPTY = "—"

# The theme's badge classes (unfold/helpers/label.html), so they exist in its stylesheet.
_BADGE = "inline-block font-semibold rounded-default text-[11px] uppercase whitespace-nowrap h-6 leading-6 px-2 "
_TONE_CLASSES = {
    "success": "bg-green-100 text-green-700 dark:bg-green-500/20 dark:text-green-400",
    "info": "bg-blue-100 text-blue-700 dark:bg-blue-500/20 dark:text-blue-400",
    "warning": "bg-orange-100 text-orange-700 dark:bg-orange-500/20 dark:text-orange-400",
    "danger": "bg-red-100 text-red-700 dark:bg-red-500/20 dark:text-red-400",
    "neutral": "bg-base-500/8 text-base-700 dark:bg-base-500/20 dark:text-base-200",
}
#: What a status value means, whatever the model: good, in progress, needs a look, bad.
STATUS_TONES = {
    **dict.fromkeys(
        ["active", "paid", "succeeded", "success", "completed", "valid", "published", "healthy", "delivered",
         "issued", "enabled", "resolved", "granted", "approved", "ok"],
        "success",
    ),
    **dict.fromkeys(
        ["trial", "pending", "queued", "running", "processing", "draft", "open", "scheduled", "retrying",
         "in_progress", "sent", "info", "low"],
        "info",
    ),
    **dict.fromkeys(
        ["suspended", "expired", "paused", "cancelled", "canceled", "past_due", "partially_refunded", "warning",
         "deprecated", "archived", "grace", "unpaid", "void", "medium"],
        "warning",
    ),
    **dict.fromkeys(
        ["revoked", "failed", "disabled", "refunded", "error", "critical", "rejected", "unhealthy", "dead",
         "blocked", "lost", "worker_lost", "invalid", "high"],
        "danger",
    ),
}  # fmt: skip


def badge(label, *, tone: str = "neutral", title: str = ""):
    """A coloured badge; ``tone`` is success, info, warning, danger or neutral."""
    return format_html(
        '<span class="{}" data-tone="{}"{}>{}</span>',
        _BADGE + _TONE_CLASSES.get(tone, _TONE_CLASSES["neutral"]),
        tone,
        format_html(' title="{}"', title) if title else "",
        label,
    )


def status_badge(value, label=None):
    """``value`` (a status's stored value) as a badge coloured by what it means."""
    if value in (None, ""):
        return EMPTY
    text = label if label is not None else str(value).replace("_", " ")
    return badge(text, tone=STATUS_TONES.get(str(value), "neutral"))


def short_key(value, *, keep: int = 8):
    """A key or id shortened to its first ``keep`` characters, monospace, full value on hover and
    a button that copies it."""
    if value in (None, ""):
        return EMPTY
    text = str(value)
    shown = text if len(text) <= keep + 1 else f"{text[:keep]}…"
    return format_html(
        '<span class="cel-key"><code title="{}">{}</code>'
        '<button type="button" class="cel-copy" data-copy="{}" title="Copy" aria-label="Copy {}">'
        '<span class="material-symbols-outlined">content_copy</span></button></span>',
        text,
        shown,
        text,
        text,
    )


def _looks_like_a_key(text: str) -> bool:
    """One word mixing letters and digits, not an address: a key, a hash, a number."""
    return not any(char.isspace() for char in text) and "@" not in text and any(char.isdigit() for char in text)


def admin_link(obj, text=None, *, limit: int = 0):
    """A link to ``obj``'s change page (plain text where it has none); ``limit`` cuts the text
    with an ellipsis, the whole of it on hover."""
    if obj is None:
        return EMPTY
    label = str(obj) if text is None else str(text)
    if limit and len(label) > KEY_LIKE_LENGTH and _looks_like_a_key(label):
        # a key or a hash: its start, in the font keys are shown in
        shown = format_html("<code>{}…</code>", label[:12])
    else:
        shown = label if not limit or len(label) <= limit else f"{label[: limit - 1]}…"
    try:
        url = reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])
    except NoReverseMatch:
        return format_html('<span title="{}">{}</span>', label, shown)
    return format_html('<a class="cel-link" href="{}" title="{}">{}</a>', url, label, shown)


def clipped(text):
    """Text on one line, cut with an ellipsis where the column ends, the whole of it on hover."""
    if text in (None, ""):
        return EMPTY
    return format_html('<span class="cel-clip" title="{}">{}</span>', text, text)


def exact_time(value: datetime) -> str:
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S %Z")


def humanised_time(value):
    """ "3 days ago" / "in 2 hours", the exact time on hover."""
    if value is None:
        return EMPTY
    if not isinstance(value, datetime):
        return str(value)
    now = timezone.now()
    if value <= now:
        text = "just now" if (now - value).total_seconds() < 60 else f"{timesince(value, now, depth=1)} ago"
    else:
        text = f"in {timeuntil(value, now, depth=1)}"
    return format_html(
        '<time class="cel-time" datetime="{}" title="{}">{}</time>', value.isoformat(), exact_time(value), text
    )


def format_money(amount, currency: str | None = DEFAULT_CURRENCY) -> str:
    """``1,234.50 USD``: the currency's decimals (2 for most); a non-zero amount too small to show
    reads ``< 0.01 USD``."""
    if amount is None:
        return EMPTY
    currency = (currency or DEFAULT_CURRENCY).upper()
    places = minor_units(currency)
    amount = Decimal(amount)
    smallest = Decimal(1).scaleb(-places)
    if amount and abs(amount) < smallest:
        return f"< {smallest:.{places}f} {currency}"
    return f"{amount:,.{places}f} {currency}"


def money(amount, currency: str | None = DEFAULT_CURRENCY):
    if amount is None:
        return EMPTY
    exact = f"{Decimal(amount)}"
    return format_html('<span class="cel-money" title="{}">{}</span>', exact, format_money(amount, currency))


def usage_meter(used, limit, *, shown=lambda value: f"{value:,}") -> str:
    """``used`` of ``limit`` as a bar, green, then orange past 80 %, red past 100 % (no limit: none);
    ``shown`` writes an amount (a count by default; ``format_money`` for spend)."""
    if not isinstance(limit, int | Decimal) or isinstance(limit, bool) or limit <= 0:
        return format_html("{} <span class='cel-empty'>(no limit)</span>", shown(used))
    share = used / limit
    level = "danger" if share >= 1 else "warning" if share >= 0.8 else "success"
    return format_html(
        '<span class="cel-meter"><span class="cel-meter-bar"><span data-level="{}" style="width: {}%"></span></span>'
        "{} / {} ({}%)</span>",
        level,
        min(100, round(share * 100)),
        shown(used),
        shown(limit),
        round(share * 100),
    )


def readonly_amount(contents):
    """A read-only document amount on a change page as two decimals ("177.30", not "177.3000");
    for the theme's ``readonly_preprocess_fields`` (the currency is its own field beside it)."""
    try:
        amount = Decimal(str(contents).replace(",", ""))
    except ArithmeticError:
        return contents
    return f"{amount:,.2f}"


def readonly_cost(contents):
    """A read-only metered cost without its trailing zeros ("0.0012", not "0.00120000")."""
    try:
        amount = Decimal(str(contents).replace(",", ""))
    except ArithmeticError:
        return contents
    return f"{amount.normalize():,f}" if amount else "0"


def readonly_money_formats(model) -> dict:
    """``readonly_preprocess_fields`` for the money fields of ``model`` (see ``is_money_field``)."""
    formats = {}
    for field in model._meta.concrete_fields:
        if is_money_field(model, field):
            formats[field.name] = readonly_cost if field.decimal_places == 8 else readonly_amount
    return formats


# --- columns of a changelist, by the kind of field ---------------------------------------------------

#: Field names that hold keys, fingerprints or references staff copy (besides UUID columns).
KEY_FIELD_NAMES = frozenset(
    {"license_key", "machine_id", "fingerprint", "key_prefix", "resource_id", "external_id", "payment_intent_id",
     "stripe_payment_intent_id", "idempotency_key", "event_id", "nonce"}
)  # fmt: skip
#: How much of a related object's name a list shows (the rest on hover, the object one click away).
RELATED_TEXT_LIMIT = 20
#: A related object's name this long without a space is a key or a hash (shown as one).
KEY_LIKE_LENGTH = 16
#: Text columns longer than this may hold long values: one line, cut, the whole on hover.
LONG_TEXT_LENGTH = 64
#: Field names that hold a status, a state or a severity (shown as badges).
STATUS_FIELD_NAMES = frozenset({"status", "severity", "state", "health"})


def is_money_field(model, field) -> bool:
    """A document amount (``celaest.money.MoneyField``: 14 digits, 4 places) on a model with a
    currency, or a metered cost (``CostField``, USD)."""
    if not isinstance(field, models.DecimalField):
        return False
    if (field.max_digits, field.decimal_places) == (18, 8):
        return True
    return (field.max_digits, field.decimal_places) == (14, 4) and _currency_field(model) is not None


def _currency_field(model):
    try:
        return model._meta.get_field("currency")
    except Exception:  # noqa: BLE001 - FieldDoesNotExist and friends
        return None


@functools.cache
def list_column(model, name: str):
    """What the changelist shows for the column ``name`` of ``model``: a display function for the
    kinds above, else ``name`` itself (Django's own rendering). One function per column, so
    ``list_display_links`` can name it too."""
    try:
        field = model._meta.get_field(name)
    except Exception:  # noqa: BLE001 - not a field: a method or callable of the admin
        return name
    if not field.concrete:
        return name
    if field.is_relation:
        if not (field.many_to_one or field.one_to_one):
            return name

        def render(obj):
            return admin_link(getattr(obj, field.name), limit=RELATED_TEXT_LIMIT)

    elif field.name in STATUS_FIELD_NAMES and field.choices:
        display = field.flatchoices
        labels = {value: label for value, label in display}

        def render(obj):
            value = getattr(obj, field.attname)
            return status_badge(value, labels.get(value))

    elif isinstance(field, models.DateTimeField):

        def render(obj):
            return humanised_time(getattr(obj, field.attname))

    elif is_money_field(model, field):
        currency_field = _currency_field(model) if field.decimal_places == 4 else None

        def render(obj):
            currency = getattr(obj, currency_field.attname) if currency_field else "USD"
            return money(getattr(obj, field.attname), currency)

    elif isinstance(field, models.UUIDField) or field.name in KEY_FIELD_NAMES:

        def render(obj):
            return short_key(getattr(obj, field.attname))

    elif isinstance(field, models.TextField) or (
        isinstance(field, models.CharField) and not field.choices and (field.max_length or 0) > LONG_TEXT_LENGTH
    ):

        def render(obj):
            return clipped(getattr(obj, field.attname))

    else:
        return name
    render.__name__ = f"{name}_column"
    render.short_description = field.verbose_name
    render.admin_order_field = name
    render.related_field = field.name if field.is_relation else None
    return render
