"""The validation log's retention: attempts older than ``ipcontrol.validation_retention_days``
are deleted, oldest first, in bounded batches, by the hourly beat job."""

from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.utils import timezone

from audit.models import SystemEvent
from ipcontrol.models import LicenseValidation
from ipcontrol.services import validations_purge
from settings_app.models import SystemConfig
from tests import factories as f

pytestmark = pytest.mark.django_db


def _attempts(license, count, at):
    for _ in range(count):
        f.LicenseValidationFactory(license=license, organization=license.organization, created_at=at)


def test_attempts_past_retention_are_deleted_in_batches_and_recent_ones_kept():
    license = f.LicenseFactory()
    start = timezone.now()
    _attempts(license, 7, start)
    _attempts(license, 3, start + timedelta(days=30))
    # A year and a bit later (the default retention is 400 days), nothing is due yet...
    with time_machine.travel(start + timedelta(days=399), tick=False):
        assert validations_purge(batch_size=2) == 0
    # ...then the first seven are, and go two at a time, in one run.
    with time_machine.travel(start + timedelta(days=401), tick=False):
        assert validations_purge(batch_size=2) == 7
        assert validations_purge(batch_size=2) == 0
    assert LicenseValidation.objects.count() == 3
    event = SystemEvent.objects.get(event_type="license.validations_purged")
    assert event.data["deleted"] == 7 and event.data["retention_days"] == 400


def test_the_retention_comes_from_system_config():
    license = f.LicenseFactory()
    now = timezone.now()
    _attempts(license, 2, now - timedelta(days=40))
    _attempts(license, 1, now - timedelta(days=10))
    SystemConfig.objects.create(key="ipcontrol.validation_retention_days", value=30)
    assert validations_purge() == 2
    assert LicenseValidation.objects.count() == 1


def test_a_run_stops_at_its_time_budget_and_the_next_goes_on():
    license = f.LicenseFactory()
    _attempts(license, 5, timezone.now() - timedelta(days=500))
    assert validations_purge(batch_size=2, max_seconds=0) == 0  # out of time before the first batch
    assert validations_purge(batch_size=2) == 5


def test_the_purge_runs_hourly():
    entry = settings.CELERY_BEAT_SCHEDULE["purge-license-validations"]
    assert entry["task"] == "ipcontrol.purge_validations" and entry["schedule"] <= 3600
