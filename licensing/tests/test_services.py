import re

import pytest

from audit.models import AuditLog
from celaest.errors import InvalidInput
from licensing.services import license_issue, license_key_generate, license_key_normalize
from settings_app.models import WebhookDelivery
from tests.factories import OrganizationFactory, SubscriptionPlanFactory, WebhookFactory

pytestmark = pytest.mark.django_db

KEY_RE = re.compile(r"^CEL(-[0-9A-HJKMNP-TV-Z]{5}){6}$")


def test_keys_are_grouped_unambiguous_and_unique():
    keys = {license_key_generate() for _ in range(2000)}
    assert len(keys) == 2000
    assert all(KEY_RE.match(key) for key in keys)


def test_key_normalization_forgives_typing():
    key = "CEL-7K3Q0-9MZ2D-4T8VW-0HBNC-Q5R1E-JA6YP"
    assert license_key_normalize(" cel-7k3qo-9mz2d-4t8vw-ohbnc-q5rie-ja6yp ") == key


def test_issue_audits_emits_and_raises_the_seat_limit():
    organization = OrganizationFactory(max_users=2)
    WebhookFactory(organization=organization, events=["license.created"])
    plan = SubscriptionPlanFactory(limits={"max_users": 25, "max_machines": 3})
    license = license_issue(organization=organization, plan=plan, expires_in_days=30)
    assert KEY_RE.match(license.license_key) and license.status == "active"
    organization.refresh_from_db()
    assert organization.max_users == 25
    assert AuditLog.objects.filter(resource_id=str(license.pk), action="create").exists()
    assert WebhookDelivery.objects.get(event_type="license.created").payload["data"]["plan"] == plan.code


@pytest.mark.parametrize("kwargs", [{"status": "revoked"}, {"expires_in_days": 0}])
def test_issue_refuses_bad_arguments(kwargs):
    with pytest.raises(InvalidInput):
        license_issue(organization=OrganizationFactory(), plan=SubscriptionPlanFactory(), **kwargs)
