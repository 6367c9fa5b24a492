"""The staff dashboard on the admin index."""

import json
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import (
    LicenseCollisionFactory,
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
    assert data["validations"]["invalid"] == [1.0]
    assert data["collisions"] == {"x": ["critical"], "open": [1.0]}
    for src in re.findall(r'<script src="([^"]+)"', html):
        assert src.startswith("/static/"), src
        assert client.get(src).status_code == 200


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
