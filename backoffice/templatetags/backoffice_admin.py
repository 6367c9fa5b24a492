"""Filters the admin's own templates use (``celaest/templates``), so change pages read like the lists."""

from datetime import datetime

from django import template

from celaest.admin_display import humanised_time

register = template.Library()


@register.filter
def humanised_readonly(field) -> str:
    """A read-only date and time on a change page or an inline (the theme's read-only field) as
    the lists show times: humanised, the exact value on hover. Empty for any other field, which the
    theme then renders as usual."""
    resolved = getattr(field, "resolved_field", None)
    if not resolved:
        return ""
    _model_field, _attribute, value = resolved
    return humanised_time(value) if isinstance(value, datetime) else ""
