"""A trial converting to a paid license: one transition, audited, announced by exactly one
``license.trial_converted`` event; and the keep-valid rule a renewal batch applies in bulk."""

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditLog
from licensing import services
from licensing.models import License
from licensing.services import LicenseStateConflict
from settings_app.models import WebhookDelivery
from tests import factories as f

pytestmark = pytest.mark.django_db


def _events(organization) -> list[str]:
    return list(WebhookDelivery.objects.filter(organization=organization).values_list("event_type", flat=True))


def test_a_trial_converts_in_one_audited_transition_with_one_event():
    license = f.LicenseFactory(status=License.Status.TRIAL, expires_at=timezone.now() - timedelta(minutes=1))
    f.WebhookFactory(organization=license.organization, events=["*"])
    until = timezone.now() + timedelta(days=30)
    services.license_trial_convert(license=license, expires_at=until)
    license.refresh_from_db()
    assert (license.status, license.expires_at) == ("active", until)
    assert _events(license.organization) == ["license.trial_converted"]
    audit = AuditLog.objects.get(resource_id=str(license.pk))
    assert audit.changes["status"] == ["trial", "active"] and audit.source == "billing"
    with pytest.raises(LicenseStateConflict):
        services.license_trial_convert(license=license, expires_at=until)


def test_keeping_licenses_valid_in_bulk_converts_trials_and_renews_the_rest():
    now = timezone.now()
    trial = f.LicenseFactory(status=License.Status.TRIAL, expires_at=now - timedelta(minutes=1))
    expired = f.LicenseFactory(status=License.Status.EXPIRED, expires_at=now - timedelta(days=1))
    later = f.LicenseFactory(expires_at=now + timedelta(days=90))
    revoked = f.LicenseFactory(status=License.Status.REVOKED)
    for license in (trial, expired, later, revoked):
        f.WebhookFactory(organization=license.organization, events=["*"])
    until = now + timedelta(days=21)
    changed = services.licenses_keep_valid(until_by_license={lic.pk: until for lic in (trial, expired, later, revoked)})
    assert changed == 2
    states = {lic.pk: (lic.status, lic.expires_at) for lic in License.objects.all()}
    assert states[trial.pk] == ("active", until) and states[expired.pk] == ("active", until)
    assert states[later.pk] == ("active", later.expires_at) and states[revoked.pk][0] == "revoked"
    assert _events(trial.organization) == ["license.trial_converted"]
    assert _events(expired.organization) == ["license.renewed"]
    assert _events(later.organization) == [] and _events(revoked.organization) == []
    assert AuditLog.objects.filter(resource_type="licensing.license").count() == 2
