"""Billing periods: the boundaries of a subscription's paid periods, counted from its anchor in
the organization's time zone.

Period ``n`` starts ``n`` months (or years) after the anchor, on the anchor's day of the month or
the month's last day when it is shorter, at the anchor's wall-clock time. Counting from the anchor
(never from the previous boundary) keeps a subscription started on 31 January on the 31st in
March after 28 February, and one started on 29 February 2028 on 28 February in 2029 and 29
February again in 2032. Wall-clock arithmetic in the organization's zone keeps the boundary at
the same local time across daylight-saving changes.
"""

import calendar
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

UTC = ZoneInfo("UTC")


def organization_zone(organization) -> ZoneInfo:
    """The organization's time zone (``settings["timezone"]``, an IANA name), else UTC."""
    name = str((getattr(organization, "settings", None) or {}).get("timezone") or "UTC")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def months_later(moment: datetime, months: int, zone: ZoneInfo = UTC) -> datetime:
    """``moment`` ``months`` calendar months later in ``zone``, the day clamped to the month's end."""
    local = moment.astimezone(zone)
    index = local.year * 12 + (local.month - 1) + months
    year, month = divmod(index, 12)
    day = min(local.day, calendar.monthrange(year, month + 1)[1])
    return local.replace(year=year, month=month + 1, day=day).astimezone(UTC)


def period_boundary(*, anchor: datetime, index: int, interval: str, zone: ZoneInfo = UTC) -> datetime:
    """The start of paid period ``index`` (0 is the anchor) of a ``month`` or ``year`` interval."""
    return months_later(anchor, index * (12 if interval == "year" else 1), zone)


def period_bounds(*, anchor: datetime, index: int, interval: str, zone: ZoneInfo = UTC) -> tuple[datetime, datetime]:
    """``[start, end)`` of paid period ``index``."""
    return (
        period_boundary(anchor=anchor, index=index, interval=interval, zone=zone),
        period_boundary(anchor=anchor, index=index + 1, interval=interval, zone=zone),
    )
