"""The admin driven in a real browser (Debian's Chromium through Playwright): a member of staff
logs in, reads the dashboard, finds a license, suspends it with the admin action, and opens an
order and its invoice. Screenshots land in test-artifacts/ for CI to keep."""

import shutil
from pathlib import Path

import pytest
from django.db import connections

from licensing.models import License
from tests.factories import InvoiceFactory, LicenseFactory, OrderItemFactory, StaffUserFactory

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]  # fmt: skip


@pytest.fixture
def browser_page(monkeypatch):
    # Playwright's sync API runs an event loop in this thread; the ORM calls made here are
    # ordinary blocking calls of the test, not async code. Only for this test.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    assert CHROMIUM, "Chromium is missing: bin/test installs Debian's chromium package"
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(20_000)
        yield page
        browser.close()
        # The test's ORM calls ran in the context Playwright's sync API gives this thread, with
        # their own database connection: close it here, while that context is current.
        connections.close_all()


@pytest.mark.django_db(transaction=True)
def test_staff_work_through_the_admin(live_server, browser_page):
    page = browser_page
    StaffUserFactory(email="staff@celaest.local")
    license = LicenseFactory(status=License.Status.ACTIVE)
    LicenseFactory(organization=license.organization, status=License.Status.ACTIVE)
    item = OrderItemFactory(order__organization=license.organization)
    invoice = InvoiceFactory(order=item.order)

    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "staff@celaest.local")
    page.fill("#id_password", "correct-horse-battery-staple")
    page.click("input[type=submit]")
    page.wait_for_selector("#celaest-dashboard")
    page.wait_for_selector("#chart-tasks .main-svg")  # Plotly drew the charts: its script loaded
    page.screenshot(path=ARTIFACTS / "01-dashboard.png", full_page=True)

    page.goto(f"{live_server.url}/admin/licensing/license/?q={license.license_key}")
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 1
    page.screenshot(path=ARTIFACTS / "02-license-search.png", full_page=True)

    rows.first.locator("input.action-select").check()
    page.select_option("select[name=action]", "suspend_licenses")
    page.click("button[name=index]")
    page.wait_for_selector("ul.messagelist li")
    assert "1 license(s) suspended." in page.inner_text("ul.messagelist")
    page.screenshot(path=ARTIFACTS / "03-license-suspended.png", full_page=True)
    license.refresh_from_db()
    assert license.status == License.Status.SUSPENDED
    page.goto(f"{live_server.url}/admin/licensing/license/{license.pk}/change/")
    assert "Suspended" in page.inner_text("#content-main")

    page.goto(f"{live_server.url}/admin/billing/order/{item.order.pk}/change/")
    assert item.order.order_number in page.inner_text("#content")
    page.screenshot(path=ARTIFACTS / "04-order.png", full_page=True)

    page.goto(f"{live_server.url}/admin/billing/invoice/{invoice.pk}/change/")
    assert invoice.invoice_number in page.inner_text("#content")
    page.screenshot(path=ARTIFACTS / "05-invoice.png", full_page=True)
