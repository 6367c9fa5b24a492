from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from analytics.models import RoiMetric
from operations.models import ProcessedTask
from tests.factories import ProcessedTaskFactory

pytestmark = pytest.mark.django_db


def test_aggregate_roi_writes_every_period_type(capsys):
    task = ProcessedTaskFactory(cost_usd=Decimal("0.5"))
    day = task.created_at.date()
    call_command("aggregate_roi", "--period", "all", "--from", day.isoformat(), "--to", day.isoformat())
    assert set(RoiMetric.objects.values_list("period_type", flat=True)) == {"day", "week", "month"}
    assert "day: 1 rows written" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--from", "2026-13-01", "--to", "2026-12-01"], "not a date"),
        (["--from", "2026-12-02", "--to", "2026-12-01"], "before"),
    ],
)
def test_aggregate_roi_bad_arguments(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("aggregate_roi", *args)


def test_aggregate_roi_requires_a_range():
    with pytest.raises(CommandError):
        call_command("aggregate_roi", "--period", "day")


def test_beat_tasks_aggregate_today_and_close_yesterday():
    from django.utils import timezone

    from analytics.tasks import aggregate_roi_closing, aggregate_roi_today

    task = ProcessedTaskFactory()
    assert aggregate_roi_today() == {"day": 1, "week": 1, "month": 1}
    today = timezone.localdate()
    assert RoiMetric.objects.get(period_type="day", period_start=today).tasks_completed == 1
    ProcessedTask.objects.filter(pk=task.pk).update(created_at=timezone.now() - timedelta(days=1))
    assert aggregate_roi_closing()["day"] == 1
    assert RoiMetric.objects.get(period_type="day", period_start=today - timedelta(days=1)).tasks_completed == 1
