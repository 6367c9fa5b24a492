"""The admin driven in a real browser (Debian's Chromium through Playwright).

A member of staff logs in, reads the dashboard, finds a license and suspends it, and opens an
order and its invoice; every changelist and the main detail pages (organization, license, order,
invoice), over the demo data, fit the page at 1440x900 and 1280x800 (a list's table scrolls no
wider than its box) with no console error and no content-policy violation. Screenshots land in
test-artifacts/ for CI to keep (and for a person to look at).
"""

import shutil
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib import admin
from django.core.management import call_command
from django.db import connections
from django.urls import reverse

from billing.models import Invoice
from identity.models import Organization
from licensing.models import License
from tests.factories import (
    InvoiceFactory,
    LicenseFactory,
    OrderItemFactory,
    ProcessedTaskFactory,
    StaffUserFactory,
)

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]  # fmt: skip
PASSWORD = "correct-horse-battery-staple"
SIZES = [(1440, 900), (1280, 800)]
#: the lists whose screenshots are kept (besides the dashboard and the detail pages)
SCREENSHOT_LISTS = {"licensing.License", "billing.Order", "audit.AuditLog"}

# How wide the changelist's table is against the box that holds it, and the page against the window.
OVERFLOW = """() => {
  const table = document.querySelector("#result_list");
  const doc = document.documentElement;
  return {
    table: table ? table.scrollWidth : 0, box: table ? table.parentElement.clientWidth : 0,
    page: doc.scrollWidth, window: doc.clientWidth,
  };
}"""


@pytest.fixture
def browser(monkeypatch):
    # Playwright's sync API runs an event loop in this thread; the ORM calls made here are
    # ordinary blocking calls of the test, not async code. Only for these tests.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    assert CHROMIUM, "Chromium is missing: bin/test installs Debian's chromium package"
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
        # The test's ORM calls ran in the context Playwright's sync API gives this thread, with
        # their own database connection: close it here, while that context is current.
        connections.close_all()


class Page:
    """A logged-in page that records console errors, failed scripts and content-policy violations."""

    def __init__(self, browser, live_server, *, width, height, color_scheme="light"):
        self.base = live_server.url
        self.page = browser.new_page(viewport={"width": width, "height": height}, color_scheme=color_scheme)
        self.page.set_default_timeout(20_000)
        self.problems: list[str] = []
        self.page.on("console", lambda message: message.type == "error" and self.problems.append(message.text))
        self.page.on("pageerror", lambda error: self.problems.append(f"script error: {error}"))
        self.page.goto(f"{self.base}/admin/login/?next=/admin/")
        self.page.fill("#id_username", "staff@celaest.local")
        self.page.fill("#id_password", PASSWORD)
        self.page.click("[type=submit]")
        self.page.wait_for_selector("#celaest-dashboard")

    def open(self, path: str):
        self.problems.clear()
        self.page.goto(f"{self.base}{path}")
        self.page.wait_for_load_state("load")
        return self.page

    def shot(self, name: str) -> None:
        self.page.screenshot(path=ARTIFACTS / name, full_page=True)


def _changelists():
    models = [m for m in admin.site._registry if m._meta.app_label in [*settings.CELAEST_APPS, "auth"]]
    return sorted(models, key=lambda model: model._meta.label)


def _main_objects():
    """The detail pages staff open most, over the demo data: an organization, its busiest license,
    a paid order and its invoice."""
    organization = Organization.objects.get(slug="demo")
    license = License.objects.filter(organization=organization).order_by("-ai_requests_used").first()
    invoice = Invoice.objects.filter(organization=organization).select_related("order").first()
    return [organization, license, invoice, invoice.order]


@pytest.mark.django_db(transaction=True)
def test_every_changelist_fits_the_page_without_errors(live_server, browser):
    call_command("seed_demo", credentials_file=ARTIFACTS / ".seed-credentials", stdout=StringIO())
    (ARTIFACTS / ".seed-credentials").unlink(missing_ok=True)
    StaffUserFactory(email="staff@celaest.local")
    overflowing, broken = [], []
    for width, height in SIZES:
        page = Page(browser, live_server, width=width, height=height)
        page.page.wait_for_selector("#chart-tasks .main-svg")  # Plotly drew the charts
        assert not page.problems, page.problems
        page.shot(f"dashboard-{width}.png")
        for model in _changelists():
            opts = model._meta
            page.open(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
            sizes = page.page.evaluate(OVERFLOW)
            if sizes["table"] > sizes["box"] or sizes["page"] > sizes["window"]:
                overflowing.append(f"{opts.label} at {width}px: {sizes}")
            if page.problems:
                broken.append(f"{opts.label}: {page.problems}")
            if opts.label in SCREENSHOT_LISTS:
                page.shot(f"list-{opts.model_name}-{width}.png")
        for obj in _main_objects():
            page.open(reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk]))
            page.page.wait_for_selector("#celaest-panels")
            sizes = page.page.evaluate(OVERFLOW)
            if sizes["page"] > sizes["window"]:
                overflowing.append(f"{obj._meta.label} page at {width}px: {sizes}")
            if page.problems:
                broken.append(f"{obj._meta.label} page: {page.problems}")
        page.page.close()
    assert not overflowing, "\n".join(overflowing)
    assert not broken, "\n".join(broken)


@pytest.mark.django_db(transaction=True)
def test_staff_work_through_the_admin(live_server, browser):
    StaffUserFactory(email="staff@celaest.local")
    license = LicenseFactory(status=License.Status.ACTIVE)
    LicenseFactory(organization=license.organization, status=License.Status.ACTIVE)
    item = OrderItemFactory(order__organization=license.organization)
    invoice = InvoiceFactory(order=item.order)
    ProcessedTaskFactory(organization=license.organization, license=license)  # its AI use this month: a chart
    page = Page(browser, live_server, width=1440, height=900)

    browser_page = page.open(f"/admin/licensing/license/?q={license.license_key}")
    rows = browser_page.locator("#result_list tbody tr")
    assert rows.count() == 1
    rows.first.locator("input.action-select").check()
    browser_page.select_option("select[name=action]", "suspend_licenses")
    browser_page.click("button[name=index]")
    browser_page.wait_for_selector("text=1 license(s) suspended.")
    license.refresh_from_db()
    assert license.status == License.Status.SUSPENDED

    browser_page = page.open(f"/admin/licensing/license/{license.pk}/change/")
    assert "Suspended" in browser_page.inner_text("#content-main")
    page.shot("license.png")

    browser_page = page.open(f"/admin/billing/order/{item.order.pk}/change/")
    assert item.order.order_number in browser_page.inner_text("#content-main")
    page.shot("order.png")

    browser_page = page.open(f"/admin/billing/invoice/{invoice.pk}/change/")
    assert invoice.invoice_number in browser_page.inner_text("#content-main")
    assert Invoice.objects.filter(pk=invoice.pk).exists()
    page.shot("invoice.png")

    organization = Organization.objects.get(pk=license.organization_id)
    browser_page = page.open(f"/admin/identity/organization/{organization.pk}/change/")
    overview = browser_page.inner_text("#celaest-panels")
    assert organization.slug in overview and license.license_key[:12] in overview
    browser_page.wait_for_selector("#celaest-panels .cel-chart .main-svg")  # the AI use chart
    page.shot("organization.png")
    assert not page.problems, page.problems

    # dark mode (the theme follows the system's): the same page, dark, charts drawn
    dark = Page(browser, live_server, width=1440, height=900, color_scheme="dark")
    dark_page = dark.open(f"/admin/identity/organization/{organization.pk}/change/")
    dark_page.wait_for_selector("#celaest-panels .cel-chart .main-svg")
    assert dark_page.evaluate("document.documentElement.classList.contains('dark')")
    dark.shot("organization-dark.png")
    assert not dark.problems, dark.problems
