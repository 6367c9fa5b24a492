import pytest

from audit.models import AuditLog
from audit.services import audit_record, system_event_record
from settings_app.events import emit_event
from settings_app.models import WebhookDelivery
from tests.factories import LicenseFactory, UserFactory, WebhookFactory

pytestmark = pytest.mark.django_db


def test_audit_record_fills_the_resource_and_redacts_secrets():
    license = LicenseFactory()
    user = UserFactory(organization=license.organization)
    row = audit_record(
        action=AuditLog.Action.UPDATE,
        resource=license,
        user=user,
        changes={"status": ["active", "suspended"], "api_key": ["sk-old", "sk-new"]},
        source="api",
    )
    assert row.resource_type == "licensing.license" and row.resource_id == str(license.pk)
    assert row.organization == license.organization
    assert row.changes == {"status": ["active", "suspended"], "api_key": "[redacted]"}


def test_system_event_record():
    event = system_event_record(event_type="job.finished", severity="warning", data={"token": "x", "n": 1})
    assert event.severity == "warning" and event.data == {"token": "[redacted]", "n": 1}


def test_emit_event_creates_one_pending_delivery_per_subscribed_endpoint():
    hook = WebhookFactory(events=["license.suspended"])
    WebhookFactory(organization=hook.organization, user=hook.user, events=["*"])
    WebhookFactory(organization=hook.organization, user=hook.user, events=["order.paid"])
    WebhookFactory(events=["*"])  # another organization
    WebhookFactory(organization=hook.organization, user=hook.user, events=["*"], status="disabled")
    event_id = emit_event("license.suspended", organization=hook.organization, payload={"license": "L1"})
    deliveries = WebhookDelivery.objects.filter(event_id=event_id)
    assert deliveries.count() == 2
    assert {d.status for d in deliveries} == {"pending"}
    assert deliveries.first().payload["data"] == {"license": "L1"}


def test_emit_event_refuses_unknown_types():
    with pytest.raises(ValueError):
        emit_event("license.exploded", organization=None, payload={})
