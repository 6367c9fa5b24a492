"""The pages issue 23 finished, in Debian's Chromium (Playwright) over the demo data, at 1440x900
and 1280x800: the dashboard (MRR beside churn; the tasks chart's right-hand axis title whole), a
license (offline certificates, policy, custom limits with the AI budget), its policy form, the
list of offline certificates, and the read-only dates of an order and an invoice. No horizontal
overflow, no console error, no content-policy violation; screenshots in test-artifacts/
(``page-*.png``)."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse

from billing.models import Invoice
from identity.models import Organization
from ipcontrol.models import OfflineCertificate
from tests.factories import StaffUserFactory
from tests.test_admin_browser import ARTIFACTS, OVERFLOW, SIZES, Page, browser  # noqa: F401 - the browser fixture

#: the right-hand axis title of the tasks chart against the chart's box (CSS pixels)
AXIS_TITLE = """() => {
  const chart = document.querySelector("#chart-tasks");
  const title = chart.querySelector(".g-y2title text");
  const box = chart.getBoundingClientRect(), drawn = title ? title.getBoundingClientRect() : null;
  return { title: title ? title.textContent : null, left: drawn ? drawn.left : 0, right: drawn ? drawn.right : 0,
           boxLeft: box.left, box: box.right };
}"""
PAGE_FITS = "() => document.documentElement.scrollWidth <= document.documentElement.clientWidth"


@pytest.mark.django_db(transaction=True)
def test_the_finished_pages_fit_and_read_well(live_server, browser):  # noqa: F811 - the fixture
    call_command("seed_demo", credentials_file=ARTIFACTS / ".seed-credentials-pages", stdout=StringIO())
    (ARTIFACTS / ".seed-credentials-pages").unlink(missing_ok=True)
    StaffUserFactory(email="staff@celaest.local")
    certificate = OfflineCertificate.objects.select_related("license").filter(license__organization__slug="demo")[0]
    invoice = Invoice.objects.filter(organization=Organization.objects.get(slug="demo")).select_related("order")[0]
    for width, height in SIZES:
        page = Page(browser, live_server, width=width, height=height)
        page.page.wait_for_selector("#chart-tasks .main-svg")
        axis = page.page.evaluate(AXIS_TITLE)
        assert axis["title"] == "tokens", axis
        assert axis["boxLeft"] <= axis["left"] and axis["right"] <= axis["box"], f"cut at {width}px: {axis}"
        assert "monthly recurring revenue" in page.page.inner_text("#celaest-dashboard")
        assert "churn, last 30 days" in page.page.inner_text("#celaest-dashboard")
        assert page.page.evaluate(PAGE_FITS) and not page.problems, page.problems
        page.shot(f"page-dashboard-{width}.png")

        license_page = page.open(reverse("admin:licensing_license_change", args=[certificate.license_id]))
        license_page.wait_for_selector("#celaest-panels")
        panels = license_page.inner_text("#celaest-panels")
        assert "Offline certificates issued" in panels and "Machine policy" in panels
        assert license_page.locator("#id_limit_ai_usd_per_month").count() == 1
        assert license_page.evaluate(PAGE_FITS) and not page.problems, page.problems
        page.shot(f"page-license-{width}.png")

        policy = page.open(reverse("admin:licensing_license_policy_one", args=[certificate.license_id]))
        assert policy.locator("#id_machine_scheme").count() == 1 and policy.locator("#id_reason").count() == 1
        assert policy.evaluate(PAGE_FITS) and not page.problems, page.problems
        page.shot(f"page-license-policy-{width}.png")

        certificates = page.open(reverse("admin:ipcontrol_offlinecertificate_changelist"))
        sizes = certificates.evaluate(OVERFLOW)
        assert sizes["table"] <= sizes["box"] and sizes["page"] <= sizes["window"], sizes
        assert certificates.locator("#result_list tbody tr").count() == OfflineCertificate.objects.count()
        assert not page.problems, page.problems
        page.shot(f"page-offline-certificates-{width}.png")

        for name, obj in (("invoice", invoice), ("order", invoice.order)):
            document = page.open(reverse(f"admin:billing_{name}_change", args=[obj.pk]))
            assert document.locator(".readonly time.cel-time").count() >= 1  # read-only dates humanised
            title = document.locator(".readonly time.cel-time").first.get_attribute("title")
            assert title and title[:4].isdigit()  # the exact value on hover
            assert document.evaluate(PAGE_FITS) and not page.problems, page.problems
            page.shot(f"page-{name}-{width}.png")
        page.page.close()
