"""The nightly usage roll-up rewrites tokens and cost of a month from its tasks and keeps the request counter."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from licensing.models import LicenseUsageLog
from licensing.rollup import usage_log_rollup
from operations.models import ProcessedTask
from tests.factories import LicenseFactory, ProcessedTaskFactory

pytestmark = pytest.mark.django_db


def _task(license, when, tokens_in, cost):
    task = ProcessedTaskFactory(
        organization=license.organization, license=license, tokens_input=tokens_in, tokens_output=10,
        cost_usd=Decimal(cost),
    )  # fmt: skip
    ProcessedTask.objects.filter(pk=task.pk).update(created_at=when)


def test_rollup_recomputes_tokens_and_cost_and_keeps_the_request_counter():
    license = LicenseFactory()
    _task(license, datetime(2026, 10, 31, 23, 59, tzinfo=UTC), 999, "9")  # previous month
    _task(license, datetime(2026, 11, 1, 0, 0, tzinfo=UTC), 100, "0.10")
    _task(license, datetime(2026, 11, 30, 23, 0, tzinfo=UTC), 50, "0.05")
    drifted = LicenseUsageLog.objects.create(
        organization=license.organization, license=license, period_start=date(2026, 11, 1),
        period_end=date(2026, 11, 30), ai_requests_count=7, tokens_input=1, calculated_cost=Decimal("5"),
    )  # fmt: skip
    assert usage_log_rollup(month=date(2026, 11, 15)) == 1
    drifted.refresh_from_db()
    assert (drifted.tokens_input, drifted.tokens_output, drifted.calculated_cost) == (150, 20, Decimal("0.15"))
    assert drifted.ai_requests_count == 7
    assert usage_log_rollup(month=date(2026, 10, 1)) == 1
    october = LicenseUsageLog.objects.get(license=license, period_start=date(2026, 10, 1))
    assert (october.ai_requests_count, october.tokens_input, october.period_end) == (1, 999, date(2026, 10, 31))
