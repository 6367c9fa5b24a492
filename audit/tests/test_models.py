import pytest

from audit.models import AuditLog
from tests.db import raises_integrity_error
from tests.factories import AuditLogFactory, OrganizationFactory, SystemEventFactory

pytestmark = pytest.mark.django_db


def test_audit_log_keeps_rows_of_a_deleted_organization():
    org = OrganizationFactory()
    log = AuditLogFactory(organization=org, ip_address="2001:db8::1")
    org.delete()
    log.refresh_from_db()
    assert log.organization_id is None
    assert AuditLog.objects.get(pk=log.pk).ip_address == "2001:db8::1"


def test_audit_log_needs_an_action():
    with raises_integrity_error():
        AuditLogFactory(action=None)


def test_system_event_defaults_to_info():
    assert SystemEventFactory().severity == "info"
