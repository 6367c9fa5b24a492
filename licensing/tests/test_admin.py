"""The license admin issues through the licensing service and changes status only through the
lifecycle actions."""

import re

import pytest
from django.contrib import admin
from django.urls import reverse

from audit.models import AuditLog
from identity.models import User
from licensing.models import License
from tests import factories as f

pytestmark = pytest.mark.django_db


def _inline_management(client) -> dict:
    """The (empty) management forms of the inlines on the add page."""
    page = client.get(reverse("admin:licensing_license_add"))
    data = {}
    for inline in page.context["inline_admin_formsets"]:
        prefix = inline.formset.prefix
        data.update({f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"})
    return data


@pytest.fixture
def staff_client(client):
    client.force_login(User.objects.create_superuser(email="root@licensing-admin.invalid", password="x-long-pass-1"))
    return client


def test_adding_a_license_issues_it_with_a_generated_key(staff_client):
    organization, plan = f.OrganizationFactory(max_users=1), f.SubscriptionPlanFactory(limits={"max_users": 7})
    response = staff_client.post(
        reverse("admin:licensing_license_add"),
        {"organization": organization.pk, "plan": plan.pk, "status": "trial", "custom_limits": "{}", "notes": "pilot",
         "expires_at_0": "2030-01-01", "expires_at_1": "00:00:00", **_inline_management(staff_client)},
    )  # fmt: skip
    assert response.status_code == 302, response.context["adminform"].form.errors
    license = License.objects.get(organization=organization)
    assert re.match(r"^CEL(-[0-9A-Z]{5}){6}$", license.license_key)
    assert (license.status, license.notes) == ("trial", "pilot")
    organization.refresh_from_db()
    assert organization.max_users == 7
    assert AuditLog.objects.filter(resource_id=str(license.pk), source="admin", action="create").exists()


def test_a_new_license_cannot_start_revoked(staff_client):
    organization, plan = f.OrganizationFactory(), f.SubscriptionPlanFactory()
    response = staff_client.post(
        reverse("admin:licensing_license_add"),
        {
            "organization": organization.pk,
            "plan": plan.pk,
            "status": "revoked",
            "custom_limits": "{}",
            **_inline_management(staff_client),
        },  # fmt: skip
    )
    assert response.status_code == 200  # the form again, with the error
    assert response.context["adminform"].form.errors["status"] == ["A new license is active or trial."]
    assert not License.objects.exists()


def test_renew_action_extends_through_the_service(staff_client):
    license = f.LicenseFactory()
    before = license.expires_at
    staff_client.post(
        reverse("admin:licensing_license_changelist"),
        {"action": "renew_licenses_30", admin.helpers.ACTION_CHECKBOX_NAME: [str(license.pk)]},
    )
    license.refresh_from_db()
    assert (license.expires_at - before).days == 30
    assert AuditLog.objects.filter(resource_id=str(license.pk), source="admin", action="update").exists()


def _run_action(client, action: str, *licenses) -> None:
    response = client.post(
        reverse("admin:licensing_license_changelist"),
        {"action": action, admin.helpers.ACTION_CHECKBOX_NAME: [str(license.pk) for license in licenses]},
    )
    assert response.status_code == 302


def test_suspend_reinstate_and_revoke_actions_are_audited_as_the_staff_member(staff_client):
    license, other = f.LicenseFactory(), f.LicenseFactory(status="revoked")
    staff = User.objects.get(email="root@licensing-admin.invalid")
    _run_action(staff_client, "suspend_licenses", license, other)  # a revoked license is skipped
    _run_action(staff_client, "reinstate_licenses", license)
    _run_action(staff_client, "revoke_licenses", license)
    license.refresh_from_db()
    assert license.status == "revoked"
    rows = AuditLog.objects.filter(resource_id=str(license.pk)).order_by("created_at")
    assert [(row.action, row.source, row.user_id, row.changes["status"]) for row in rows] == [
        ("update", "admin", staff.pk, ["active", "suspended"]),
        ("update", "admin", staff.pk, ["suspended", "active"]),
        ("update", "admin", staff.pk, ["active", "revoked"]),
    ]
    assert rows[0].changes["status_reason"] == ["", f"Suspended by {staff} in the admin"]
    assert rows[2].changes["status_reason"] == ["", f"Revoked by {staff} in the admin"]
    assert all(row.ip_address == "127.0.0.1" for row in rows)
    assert not AuditLog.objects.filter(resource_id=str(other.pk)).exists()
