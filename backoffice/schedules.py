"""Celery beat schedules in words, for the dashboard: "every 2 seconds", "every day at 00:30"."""

from datetime import timedelta

from celery.schedules import crontab

_DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]


def _every(amount: float, unit: str) -> str:
    amount = int(amount) if float(amount).is_integer() else amount
    return f"every {unit}" if amount == 1 else f"every {amount} {unit}s"


def _interval_in_words(seconds: float) -> str:
    if seconds < 60 or seconds % 60:
        return _every(seconds, "second")
    if seconds < 3600 or seconds % 3600:
        return _every(seconds / 60, "minute")
    if seconds < 86400 or seconds % 86400:
        return _every(seconds / 3600, "hour")
    return _every(seconds / 86400, "day")


def _crontab_in_words(schedule: crontab) -> str:
    minute, hour = schedule._orig_minute, schedule._orig_hour
    day_of_week, day_of_month, month = (
        schedule._orig_day_of_week,
        schedule._orig_day_of_month,
        schedule._orig_month_of_year,
    )
    every_day = day_of_week == "*" and day_of_month == "*" and month == "*"
    if str(minute).startswith("*/") and hour == "*" and every_day:
        return _every(int(str(minute)[2:]), "minute")
    if str(minute).isdigit() and hour == "*" and every_day:
        return f"every hour at :{int(minute):02d}"
    if str(minute).isdigit() and str(hour).isdigit():
        at = f"{int(hour):02d}:{int(minute):02d}"
        if every_day:
            return f"every day at {at}"
        if str(day_of_week).isdigit() and day_of_month == "*" and month == "*":
            return f"every {_DAYS[int(day_of_week) % 7]} at {at}"
        if str(day_of_month).isdigit() and day_of_week == "*" and month == "*":
            return f"on day {int(day_of_month)} of every month at {at}"
    return f"cron {minute} {hour} {day_of_month} {month} {day_of_week}"


def schedule_in_words(schedule) -> str:
    """A beat schedule (seconds, a timedelta or a crontab) as staff would say it."""
    if isinstance(schedule, crontab):
        return _crontab_in_words(schedule)
    if isinstance(schedule, timedelta):
        return _interval_in_words(schedule.total_seconds())
    if isinstance(schedule, int | float):
        return _interval_in_words(float(schedule))
    return str(schedule)
