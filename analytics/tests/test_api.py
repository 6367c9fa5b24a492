"""/api/v1/roi-metrics and /telemetry: filters, and cursor paging of telemetry."""

from datetime import date, timedelta

import pytest
from django.utils import timezone

from analytics.models import RoiMetric
from identity.models import User
from tests.clients import client_as
from tests.factories import RoiMetricFactory, TelemetryEventFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def viewer():
    return UserFactory(role=User.Role.VIEWER)


def _ids(client, path, query):
    response = client.get(path, query)
    assert response.status_code == 200, response.json()
    return [row["id"] for row in response.json()["results"]]


def test_roi_metrics_filter_by_period_type_and_range_newest_first(viewer):
    org = viewer.organization
    day_1 = RoiMetricFactory(organization=org, period_start=date(2026, 3, 1))
    day_2 = RoiMetricFactory(organization=org, period_start=date(2026, 3, 2), money_saved="125.5000")
    month = RoiMetricFactory(organization=org, period_type=RoiMetric.PeriodType.MONTH, period_start=date(2026, 3, 1))
    RoiMetricFactory(period_start=date(2026, 3, 2))  # another organization
    client = client_as(viewer)

    assert _ids(client, "/api/v1/roi-metrics", {"period_type": "day"}) == [str(day_2.pk), str(day_1.pk)]
    assert _ids(client, "/api/v1/roi-metrics", {"period_type": "month"}) == [str(month.pk)]
    in_range = {"period_type": "day", "period_start__gte": "2026-03-02", "period_start__lte": "2026-03-31"}
    assert _ids(client, "/api/v1/roi-metrics", in_range) == [str(day_2.pk)]
    assert _ids(client, "/api/v1/roi-metrics", {"period_start__lte": "2026-02-28"}) == []
    assert client.get("/api/v1/roi-metrics", {"period_type": "decade"}).status_code == 400

    body = client.get(f"/api/v1/roi-metrics/{day_2.pk}").json()
    assert body["money_saved"] == "125.5000" and body["period_start"] == "2026-03-02"


def test_roi_metrics_sort_by_money_saved(viewer):
    org = viewer.organization
    low = RoiMetricFactory(organization=org, period_start=date(2026, 3, 1), money_saved="10")
    high = RoiMetricFactory(organization=org, period_start=date(2026, 3, 2), money_saved="90")
    client = client_as(viewer)
    assert _ids(client, "/api/v1/roi-metrics", {"ordering": "-money_saved"}) == [str(high.pk), str(low.pk)]
    assert _ids(client, "/api/v1/roi-metrics", {"ordering": "money_saved"}) == [str(low.pk), str(high.pk)]


def test_telemetry_filters(viewer):
    org = viewer.organization
    now = timezone.now()
    click = TelemetryEventFactory(organization=org, event_type="click", event_name="export", created_at=now)
    view = TelemetryEventFactory(organization=org, event_name="billing", created_at=now - timedelta(days=2))
    TelemetryEventFactory(event_type="click", event_name="export")  # another organization
    client = client_as(viewer)

    assert _ids(client, "/api/v1/telemetry", {}) == [str(click.pk), str(view.pk)]
    assert _ids(client, "/api/v1/telemetry", {"event_type": "click"}) == [str(click.pk)]
    assert _ids(client, "/api/v1/telemetry", {"event_name": "billing"}) == [str(view.pk)]
    day_ago = (now - timedelta(days=1)).isoformat()
    assert _ids(client, "/api/v1/telemetry", {"created_at__gte": day_ago}) == [str(click.pk)]
    assert _ids(client, "/api/v1/telemetry", {"created_at__lte": day_ago}) == [str(view.pk)]


def test_telemetry_pages_with_a_cursor(viewer):
    org = viewer.organization
    start = timezone.now() - timedelta(hours=1)
    events = [TelemetryEventFactory(organization=org, created_at=start + timedelta(seconds=i)) for i in range(3)]
    client = client_as(viewer)

    first = client.get("/api/v1/telemetry", {"page_size": 2}).json()
    assert [row["id"] for row in first["results"]] == [str(events[2].pk), str(events[1].pk)]
    assert "cursor=" in first["next"]
    second = client.get(first["next"]).json()
    assert [row["id"] for row in second["results"]] == [str(events[0].pk)]
    assert second["next"] is None and second["previous"]


def test_telemetry_is_list_only_here(viewer):
    event = TelemetryEventFactory(organization=viewer.organization)
    owner = UserFactory(organization=viewer.organization, role=User.Role.OWNER)
    assert client_as(owner).get(f"/api/v1/telemetry/{event.pk}").status_code == 404
    assert client_as(owner).post("/api/v1/telemetry", {"event_type": "x"}, format="json").status_code == 405
