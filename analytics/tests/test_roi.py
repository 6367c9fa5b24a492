"""ROI aggregation against hand-computed fixtures, across day/week/month and time zones."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from analytics.models import RoiMetric
from analytics.services import period_range, roi_aggregate, roi_aggregate_all
from operations.models import ProcessedTask
from tests.factories import OrganizationFactory, ProcessedTaskFactory, PromptFactory, UserFactory

pytestmark = pytest.mark.django_db


def _utc(*args):
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
def fixture_tasks():
    """New York organization (UTC-4 until 1 Nov 2026 02:00 local, then UTC-5) and a UTC one."""
    ny = OrganizationFactory(
        slug="ny",
        settings={"timezone": "America/New_York", "hourly_rate": "60", "currency": "USD",
                  "minutes_saved_overrides": {"summary": 10}},
    )  # fmt: skip
    utc_org = OrganizationFactory(slug="utc", settings={})
    ada, bob = UserFactory(organization=ny), UserFactory(organization=ny)
    summary = PromptFactory(slug="summary", minutes_saved_estimate=Decimal("5"))
    translate = PromptFactory(slug="translate", category="translation", minutes_saved_estimate=Decimal("3"))

    def task(org, user, prompt, status, when, cost, ms):
        row = ProcessedTaskFactory(
            organization=org, user=user, prompt=prompt, status=status, cost_usd=Decimal(cost),
            execution_time_ms=ms, tokens_input=100, tokens_output=50,
        )  # fmt: skip
        ProcessedTask.objects.filter(pk=row.pk).update(created_at=when)

    task(ny, ada, summary, "completed", _utc(2026, 11, 1, 2, 0), "0.50", 1000)  # NY: Sat 31 Oct 22:00
    task(ny, bob, translate, "completed", _utc(2026, 11, 2, 15, 0), "0.25", 3000)  # NY: Mon 2 Nov 10:00
    task(ny, ada, summary, "failed", _utc(2026, 11, 2, 16, 0), "0.10", 500)  # NY: Mon 2 Nov 11:00
    task(ny, ada, None, "completed", _utc(2026, 11, 8, 4, 30), "0", 2000)  # NY: Sat 7 Nov 23:30
    task(utc_org, UserFactory(organization=utc_org), summary, "completed", _utc(2026, 11, 1, 2, 0), "0.40", 800)
    return ny, utc_org


def _row(org, period_type, start):
    return RoiMetric.objects.get(organization=org, period_type=period_type, period_start=start)


def test_days_weeks_and_months_in_the_organizations_time_zone(fixture_tasks):
    ny, utc_org = fixture_tasks
    roi_aggregate_all(date_from=date(2026, 10, 1), date_to=date(2026, 11, 30))

    october = _row(ny, "month", date(2026, 10, 1))  # the 02:00 UTC task was still 31 Oct in New York
    assert (october.tasks_completed, october.time_saved_minutes, october.money_saved) == (1, 10, Decimal("9.5"))
    assert _row(ny, "day", date(2026, 10, 31)).tasks_completed == 1
    assert _row(ny, "week", date(2026, 10, 26)).tasks_completed == 1

    for period_type in ("week", "month"):
        row = _row(ny, period_type, date(2026, 11, 2) if period_type == "week" else date(2026, 11, 1))
        assert row.tasks_completed == 2 and row.tasks_failed == 1
        assert row.time_saved_minutes == Decimal("3")  # translate 3 + a prompt-less task 0
        assert row.money_saved == Decimal("2.65")  # 3 min at 60/h = 3.00, minus 0.35 of AI cost
        assert row.ai_cost_usd == Decimal("0.35")
        assert row.avg_execution_time_ms == 2500  # completed tasks only
        assert row.active_users_count == 2
        assert (row.tokens_input, row.tokens_output) == (300, 150)

    monday = _row(ny, "day", date(2026, 11, 2))
    assert (monday.tasks_completed, monday.tasks_failed, monday.avg_execution_time_ms) == (1, 1, 3000)
    assert _row(ny, "day", date(2026, 11, 7)).tasks_completed == 1

    utc_day = _row(utc_org, "day", date(2026, 11, 1))  # UTC: already 1 Nov; no hourly rate
    assert utc_day.time_saved_minutes == Decimal("5") and utc_day.money_saved == Decimal("-0.4")
    assert not RoiMetric.objects.filter(organization=utc_org, period_type="month", period_start=date(2026, 10, 1))


def test_recomputing_changes_nothing(fixture_tasks):
    roi_aggregate_all(date_from=date(2026, 10, 1), date_to=date(2026, 11, 30))
    before = list(RoiMetric.objects.order_by("id").values())
    roi_aggregate_all(date_from=date(2026, 10, 1), date_to=date(2026, 11, 30))
    after = list(RoiMetric.objects.order_by("id").values())
    strip = lambda rows: [{k: v for k, v in row.items() if k != "updated_at"} for row in rows]  # noqa: E731
    assert strip(before) == strip(after)


def test_a_range_inside_a_week_recomputes_the_whole_week(fixture_tasks):
    ny, _ = fixture_tasks
    roi_aggregate(period_type="week", date_from=date(2026, 11, 4), date_to=date(2026, 11, 4))
    week = _row(ny, "week", date(2026, 11, 2))
    assert week.tasks_completed == 2 and week.tasks_failed == 1
    assert RoiMetric.objects.filter(period_type="week").count() == 1


def test_period_ranges():
    assert period_range(period_type="week", date_from=date(2026, 11, 4), date_to=date(2026, 11, 18)).first == date(
        2026, 11, 2
    )
    months = period_range(period_type="month", date_from=date(2026, 12, 5), date_to=date(2027, 1, 3))
    assert (months.first, months.last, months.end) == (date(2026, 12, 1), date(2027, 1, 1), date(2027, 2, 1))
    with pytest.raises(ValueError):
        roi_aggregate(period_type="year", date_from=date(2026, 1, 1), date_to=date(2026, 1, 2))


def test_organizations_without_a_rate_use_the_configured_default(fixture_tasks):
    from settings_app.models import SystemConfig

    _, utc_org = fixture_tasks
    SystemConfig.objects.create(key="roi.default_hourly_rate", value="30")
    roi_aggregate(period_type="day", date_from=date(2026, 11, 1), date_to=date(2026, 11, 1))
    assert _row(utc_org, "day", date(2026, 11, 1)).money_saved == Decimal("2.1")  # 5 min at 30/h − 0.40
