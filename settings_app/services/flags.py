"""Feature flags switched on and off (the admin's actions). Their evaluation is
``settings_app.runtime``; the cached copies retire themselves on the update."""

from django.utils import timezone


def flags_set_enabled(*, flags, enabled: bool) -> int:
    """Switch ``flags`` (a queryset) on or off; returns how many rows were written."""
    return flags.update(is_enabled=enabled, updated_at=timezone.now())
