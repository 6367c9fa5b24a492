"""The staff dashboard on the admin index."""

import json
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.factories import (
    LicenseCollisionFactory,
    LicenseValidationDailyFactory,
    LicenseValidationFactory,
    ProcessedTaskFactory,
    StaffUserFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def _chart_data(html: str) -> dict:
    match = re.search(r'<script id="celaest-dashboard-data" type="application/json">(.*?)</script>', html, re.S)
    assert match, "the dashboard data is not embedded"
    return json.loads(match.group(1))


def test_staff_see_kpis_and_charts_with_local_assets(client):
    ProcessedTaskFactory(tokens_input=100, tokens_output=20)
    LicenseValidationFactory(is_valid=False, result_code="EXPIRED")
    LicenseCollisionFactory(severity="critical")
    client.force_login(StaffUserFactory())
    response = client.get("/admin/")
    assert response.status_code == 200
    html = response.content.decode()
    for chart in ("tasks", "roi", "validations", "collisions", "revenue", "webhooks"):
        assert f'id="chart-{chart}"' in html
    data = _chart_data(html)
    assert data["tasks"]["tasks"] == [1.0] and data["tasks"]["tokens"] == [120.0]
    assert data["validations"]["invalid"] == [1.0]  # today: from the log itself
    assert data["collisions"] == {"x": ["critical"], "open": [1.0]}
    for src in re.findall(r'<script src="([^"]+)"', html):
        assert src.startswith("/static/"), src
        assert client.get(src).status_code == 200


def test_past_days_of_validations_come_from_the_daily_counts(client):
    today = timezone.now().date()
    for days_ago, code, attempts in ((3, "VALID", 40), (3, "EXPIRED", 2), (2, "OVERAGE", 5), (40, "VALID", 9)):
        LicenseValidationDailyFactory(day=today - timedelta(days=days_ago), result_code=code, attempts=attempts)
    LicenseValidationFactory(is_valid=True, result_code="VALID")  # today, counted live
    LicenseValidationFactory(is_valid=False, result_code="NOT_FOUND", license=None, organization=None)  # no license
    client.force_login(StaffUserFactory())
    data = _chart_data(client.get("/admin/").content.decode())["validations"]
    assert data["x"] == [str(today - timedelta(days=3)), str(today - timedelta(days=2)), str(today)]
    assert (data["valid"], data["invalid"]) == ([40.0, 5.0, 1.0], [2.0, 0.0, 0.0])


def test_customers_are_refused(client):
    client.force_login(UserFactory())
    response = client.get("/admin/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_dashboard_queries_do_not_grow_with_data(client):
    client.force_login(StaffUserFactory())

    def count():
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/admin/").status_code == 200
        return len(queries)

    ProcessedTaskFactory()
    count()  # warm the per-process caches (content types, permissions)
    few = count()
    for _ in range(10):
        ProcessedTaskFactory()
        LicenseValidationFactory()
    assert count() == few


def test_amounts_carry_their_currency_and_jobs_read_in_words(client):
    from decimal import Decimal

    from django.utils import timezone

    from tests.factories import OrderFactory

    OrderFactory(status="paid", paid_at=timezone.now(), total=Decimal("177.3"), currency="EUR")
    client.force_login(StaffUserFactory())
    html = client.get("/admin/").content.decode()
    assert "177.30 EUR" in html  # currency and two decimals
    assert "every day at 00:30" in html and "<crontab" not in html  # schedules in words
    assert "every 2 seconds" in html


def test_period_selector_changes_the_charts_window(client):
    client.force_login(StaffUserFactory())
    week = _chart_data(client.get("/admin/?period=7").content.decode())
    assert week["days"] == 7
    assert _chart_data(client.get("/admin/?period=999").content.decode())["days"] == 30  # unknown: the default


def test_collisions_are_ordered_by_severity(client):
    for severity in ("critical", "low", "high"):
        LicenseCollisionFactory(severity=severity)
    client.force_login(StaffUserFactory())
    data = _chart_data(client.get("/admin/").content.decode())
    assert data["collisions"]["x"] == ["low", "high", "critical"]


def test_mrr_and_churn_are_billings_own(client):
    """MRR per currency and churn over the period chosen, as billing computes them
    (billing.selectors.subscription_metrics), side by side."""
    from decimal import Decimal

    from tests.factories import SubscriptionFactory, SubscriptionPlanFactory

    plan = SubscriptionPlanFactory(price_monthly=Decimal("30"), price_yearly=Decimal("240"), currency="EUR")
    SubscriptionFactory(plan=plan, currency="EUR", interval="month", status="active")
    SubscriptionFactory(plan=plan, currency="EUR", interval="year", status="past_due")
    SubscriptionFactory(plan=plan, currency="EUR", interval="month", status="cancelled", cancelled_at=timezone.now())
    old = timezone.now() - timedelta(days=20)
    SubscriptionFactory(plan=plan, currency="EUR", interval="month", status="cancelled", cancelled_at=old)
    client.force_login(StaffUserFactory())
    html = client.get("/admin/").content.decode()
    assert 'data-kpi="mrr">50.00 EUR<' in html  # 30 a month + 240 a year / 12
    assert 'data-kpi="churn">50.0 %<' in html and "churn, last 30 days (2 cancelled)" in html  # 2 of 2 + 2
    week = client.get("/admin/?period=7").content.decode()
    assert 'data-kpi="churn">33.3 %<' in week and "churn, last 7 days (1 cancelled)" in week  # 1 of 2 + 1
