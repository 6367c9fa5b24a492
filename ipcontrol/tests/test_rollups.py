"""Daily validation counts: per license, UTC day and result, recomputed idempotently by the hourly
job, and kept once retention has deleted the attempts."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.conf import settings

from ipcontrol.models import LicenseValidation, LicenseValidationDaily
from ipcontrol.rollups import validation_days_rollup, validation_days_rollup_recent
from ipcontrol.services import validations_purge
from tests import factories as f

pytestmark = pytest.mark.django_db

DAY = datetime(2026, 11, 3, tzinfo=UTC)


def _attempt(license, at, code="VALID"):
    f.LicenseValidationFactory(license=license, created_at=at, result_code=code, is_valid=code == "VALID")


def _counts(license) -> dict:
    return {
        (row.day.isoformat(), row.result_code): row.attempts
        for row in LicenseValidationDaily.objects.filter(license=license)
    }


def test_a_day_is_counted_per_license_and_result_and_a_rerun_recounts_it():
    license, other = f.LicenseFactory(), f.LicenseFactory()
    for minutes in (0, 5, 600):
        _attempt(license, DAY + timedelta(minutes=minutes))
    _attempt(license, DAY + timedelta(hours=23, minutes=59), code="NO_MACHINE")
    _attempt(license, DAY + timedelta(days=1))  # the next day (UTC)
    _attempt(other, DAY + timedelta(hours=1), code="EXPIRED")
    f.LicenseValidationFactory(license=None, organization=None, created_at=DAY, result_code="NOT_FOUND")
    assert validation_days_rollup(day=DAY.date()) == 3
    assert _counts(license) == {("2026-11-03", "VALID"): 3, ("2026-11-03", "NO_MACHINE"): 1}
    assert _counts(other) == {("2026-11-03", "EXPIRED"): 1}
    assert not LicenseValidationDaily.objects.filter(result_code="NOT_FOUND").exists()
    _attempt(license, DAY + timedelta(hours=2))
    validation_days_rollup(day=DAY.date())
    assert _counts(license)[("2026-11-03", "VALID")] == 4
    assert LicenseValidationDaily.objects.filter(license=license).count() == 2


def test_the_hourly_job_counts_today_and_yesterday_and_counts_outlive_retention():
    license = f.LicenseFactory()
    _attempt(license, DAY + timedelta(hours=22))
    _attempt(license, DAY + timedelta(days=1, hours=1))
    with time_machine.travel(DAY + timedelta(days=1, hours=2), tick=False):
        validation_days_rollup_recent(now=datetime.now(UTC))
    assert _counts(license) == {("2026-11-03", "VALID"): 1, ("2026-11-04", "VALID"): 1}
    with time_machine.travel(DAY + timedelta(days=500), tick=False):
        validations_purge()
    assert not LicenseValidation.objects.exists()
    assert _counts(license) == {("2026-11-03", "VALID"): 1, ("2026-11-04", "VALID"): 1}
    assert settings.CELERY_BEAT_SCHEDULE["rollup-license-validation-days"]["schedule"] <= 3600
