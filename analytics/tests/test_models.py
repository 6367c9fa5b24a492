from datetime import date

import pytest

from tests.db import raises_integrity_error
from tests.factories import RoiMetricFactory, TelemetryEventFactory

pytestmark = pytest.mark.django_db


def test_one_roi_row_per_organization_period_type_and_start():
    row = RoiMetricFactory(period_type="day", period_start=date(2026, 11, 2))
    RoiMetricFactory(organization=row.organization, period_type="week", period_start=date(2026, 11, 2))
    with raises_integrity_error():
        RoiMetricFactory(organization=row.organization, period_type="day", period_start=date(2026, 11, 2))


def test_roi_counters_cannot_be_negative():
    with raises_integrity_error():
        RoiMetricFactory(tasks_completed=-1)


def test_telemetry_event_needs_an_organization():
    with raises_integrity_error():
        TelemetryEventFactory(organization=None)
