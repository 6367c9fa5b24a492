"""The license page: its AI budget among the custom limits (an amount in USD, checked, saved through
``license_custom_limits_set``, audited), its machine policy (the plan's value, the override and what
is in force; overrides changed through ``license_policy_set`` with a reason), and a number of
queries that does not grow with the license."""

from decimal import Decimal

import pytest
from django.contrib.admin.models import LogEntry
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit.models import AuditLog
from licensing.admin import AI_BUDGET_LIMIT
from licensing.models import License
from operations.budgets import LICENSE_BUDGET_LIMIT, license_budget_usd
from tests import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client):
    user = f.StaffUserFactory()
    client.force_login(user)
    client.user = user
    return client


@pytest.fixture
def license():
    plan = f.SubscriptionPlanFactory(limits={"max_machines": 3, "ai_usd_per_month": "100"}, features=["export"])
    return f.LicenseFactory(plan=plan, custom_limits={"max_users": 4})


def _change_url(license):
    return reverse("admin:licensing_license_change", args=[license.pk])


def _form_data(client, license, **changes) -> dict:
    """What the change form posts back untouched, with ``changes``."""
    page = client.get(_change_url(license))
    data = {}
    for bound in page.context["adminform"].form:
        value = bound.value()
        data[bound.html_name] = "" if value is None else value
    for inline in page.context["inline_admin_formsets"]:
        formset = inline.formset
        data.update({f"{formset.prefix}-TOTAL_FORMS": "0", f"{formset.prefix}-INITIAL_FORMS": "0"})
    return {**data, **changes}


def test_the_budget_key_is_the_one_the_gateway_reads():
    assert AI_BUDGET_LIMIT == LICENSE_BUDGET_LIMIT


def test_an_ai_budget_is_saved_through_the_service_and_audited(staff, license):
    response = staff.post(_change_url(license), _form_data(staff, license, limit_ai_usd_per_month="250.5"))
    assert response.status_code == 302, response.context["adminform"].form.errors
    license.refresh_from_db()
    assert license.custom_limits == {"max_users": 4, "ai_usd_per_month": "250.50"}
    assert license_budget_usd(license) == Decimal("250.50")
    audit = AuditLog.objects.get(resource_id=str(license.pk), changes__has_key="custom_limits.ai_usd_per_month")
    assert audit.changes["custom_limits.ai_usd_per_month"] == ["(plan's)", "250.50"]
    assert (audit.source, audit.user_id) == ("admin", staff.user.pk)
    # the form shows it back; blank goes back to the plan's budget
    assert staff.get(_change_url(license)).context["adminform"].form["limit_ai_usd_per_month"].value() == "250.50"
    staff.post(_change_url(license), _form_data(staff, license, limit_ai_usd_per_month=""))
    license.refresh_from_db()
    assert license.custom_limits == {"max_users": 4} and license_budget_usd(license) == Decimal("100")


def test_unlimited_lifts_the_plans_budget(staff, license):
    staff.post(_change_url(license), _form_data(staff, license, limit_ai_usd_per_month="Unlimited"))
    license.refresh_from_db()
    assert license.custom_limits[AI_BUDGET_LIMIT] is None and license_budget_usd(license) is None


@pytest.mark.parametrize("typed", ["-1", "1.005", "ten", "NaN", "Infinity", "1e-3", "0x10"])
def test_a_bad_budget_is_a_form_error_and_nothing_changes(staff, license, typed):
    response = staff.post(_change_url(license), _form_data(staff, license, limit_ai_usd_per_month=typed))
    assert response.status_code == 200
    assert "limit_ai_usd_per_month" in response.context["adminform"].form.errors
    license.refresh_from_db()
    assert license.custom_limits == {"max_users": 4}
    assert not AuditLog.objects.filter(resource_id=str(license.pk), changes__has_key="custom_limits.ai_usd_per_month")


def test_the_page_shows_the_ai_spend_against_the_budget(staff, license):
    f.LicenseUsageLogFactory(license=license, organization=license.organization, calculated_cost=Decimal("25"))
    page = staff.get(_change_url(license))
    usage = next(panel for panel in page.context["celaest_panels"] if panel.title.startswith("Limits"))
    facts = dict(usage.facts)
    assert "25.00 USD / 100.00 USD (25%)" in str(facts["AI cost this period"])


def _policy(page):
    panel = next(panel for panel in page.context["celaest_panels"] if panel.title == "Machine policy")
    return {row[0]: [str(cell) for cell in row[1:]] for row in panel.rows}, panel


def test_the_policy_shows_the_plans_value_the_override_and_what_is_in_force(staff, license):
    License.objects.filter(pk=license.pk).update(overage_allowance=150, entitlements=["beta"])
    rows, panel = _policy(staff.get(_change_url(license)))
    assert rows["Machine scheme"] == ["Node-locked", "—", "Node-locked"]
    assert rows["Overage allowance"] == ["None", "1.5x", "1.5x"]
    assert rows["Entitlements"] == ["export", "beta", "beta, export"]
    assert rows["Machines at most"] == ["3", "—", "4 with the overage"]  # 3 machines, 1.5x
    assert "Current" in str(dict(panel.facts)["Billing state"])


def test_staff_change_the_policy_through_the_service_with_a_reason(staff, license):
    url = reverse("admin:licensing_license_policy_one", args=[license.pk])
    form = staff.get(url)
    assert form.status_code == 200 and "The plan&#x27;s (Node-locked)" in form.text
    refused = staff.post(url, {"machine_scheme": "floating", "reason": ""})
    assert refused.status_code == 200 and "reason" in refused.context["form"].errors
    assert staff.post(url, {"heartbeat_window_seconds": "-5", "reason": "x"}).context["form"].errors
    response = staff.post(
        url,
        {"machine_scheme": "floating", "overage_allowance": "125", "heartbeat_window_seconds": "300",
         "entitlements": "beta, reports", "reason": "Pilot on the plant floor"},
    )  # fmt: skip
    assert response.status_code == 302
    license.refresh_from_db()
    assert (license.machine_scheme, license.overage_allowance, license.heartbeat_window_seconds) == (
        "floating",
        125,
        300,
    )
    assert license.entitlements == ["beta", "reports"]
    audit = AuditLog.objects.get(resource_id=str(license.pk), changes__has_key="machine_scheme")
    assert (audit.source, audit.user_id, audit.changes["machine_scheme"]) == (
        "admin",
        staff.user.pk,
        [None, "floating"],
    )
    assert LogEntry.objects.filter(object_id=str(license.pk), change_message__contains="Pilot on the plant floor")
    # blank goes back to the plan's; unchanged fields are not rewritten
    staff.post(url, {"machine_scheme": "", "overage_allowance": "125", "heartbeat_window_seconds": "300",
                     "entitlements": "beta, reports", "reason": "Back to the plan"})  # fmt: skip
    license.refresh_from_db()
    assert license.machine_scheme is None and license.overage_allowance == 125
    last = AuditLog.objects.filter(resource_id=str(license.pk)).order_by("-created_at").first()
    assert set(last.changes) == {"machine_scheme"}


def test_the_license_page_runs_as_many_queries_however_big_the_license(staff, license):
    def grow():
        binding = f.LicenseIpBindingFactory(license=license)
        f.OfflineCertificateFactory(license=license, fingerprint=binding.machine_id)
        f.LicenseValidationFactory(license=license, ip_binding=binding)
        f.LicenseCollisionFactory(license=license)

    def count():
        with CaptureQueriesContext(connection) as queries:
            assert staff.get(_change_url(license)).status_code == 200
        return len(queries)

    grow()
    count()  # warm per-process caches
    few = count()
    for _ in range(5):
        grow()
    assert count() == few
