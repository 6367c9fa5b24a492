"""ROI export and summary; telemetry batch ingestion and retention."""

from datetime import date
from decimal import Decimal

import pytest

from analytics.models import RoiMetric, TelemetryEvent
from audit.models import AuditLog

pytestmark = pytest.mark.django_db


def _owner_client():
    from rest_framework.test import APIClient

    from tests.factories import OrganizationFactory, UserFactory

    owner = UserFactory(organization=OrganizationFactory(settings={"currency": "EUR"}), role="owner")
    client = APIClient()
    client.force_authenticate(owner)
    return owner, client


def test_roi_export_is_csv_of_my_rows_only_and_audited():
    from tests.factories import RoiMetricFactory

    owner, client = _owner_client()
    RoiMetricFactory(organization=owner.organization, period_start=date(2026, 11, 1), tasks_completed=7)
    RoiMetricFactory(period_start=date(2026, 11, 1), tasks_completed=99)  # another organization
    response = client.get("/api/v1/roi-metrics/export", {"period_type": "day"})
    assert response.status_code == 200 and response["Content-Type"] == "text/csv"
    lines = b"".join(response.streaming_content).decode().strip().splitlines()
    assert lines[0].startswith("id,period_type,period_start,tasks_completed")
    assert len(lines) == 2 and ",7," in lines[1]
    assert AuditLog.objects.filter(action="export", user=owner, resource_type="analytics.roimetric").exists()


def test_roi_summary_compares_this_month_with_last(monkeypatch):
    from django.utils import timezone

    owner, client = _owner_client()
    monkeypatch.setattr(timezone, "localdate", lambda: date(2026, 11, 24))
    RoiMetric.objects.create(
        organization=owner.organization, period_type="month", period_start=date(2026, 10, 1),
        tasks_completed=10, money_saved=Decimal("200"),
    )  # fmt: skip
    RoiMetric.objects.create(
        organization=owner.organization, period_type="month", period_start=date(2026, 11, 1),
        tasks_completed=15, money_saved=Decimal("150"),
    )  # fmt: skip
    body = client.get("/api/v1/roi-metrics/summary").json()
    assert body["currency"] == "EUR"
    assert body["this_month"]["tasks_completed"] == 15 and body["last_month"]["tasks_completed"] == 10
    assert body["change_percent"]["tasks_completed"] == "50.0"
    assert body["change_percent"]["money_saved"] == "-25.0"
    assert body["change_percent"]["active_users_count"] is None


def _event(**overrides):
    return {"event_type": "page_view", "event_name": "dashboard", "properties": {"tab": "roi"}} | overrides


def test_telemetry_batch_inserts_for_the_caller():
    owner, client = _owner_client()
    body = {"events": [_event(), _event(event_name="settings", device_type="mobile")]}
    response = client.post("/api/v1/telemetry/batch", body, format="json")
    assert response.status_code == 201 and response.json() == {"accepted": 2}
    rows = TelemetryEvent.objects.filter(organization=owner.organization, user=owner)
    assert rows.count() == 2


@pytest.mark.parametrize(
    "body",
    [
        {"events": [_event() for _ in range(501)]},
        {"events": []},
        {"events": [_event(), _event(event_type="Bad Type!")]},
        {"events": [_event(), _event(device_type="toaster")]},
        {"events": [_event(properties={"blob": "x" * 9000})]},
        {"events": [_event(organization="00000000-0000-0000-0000-000000000000") | {"event_name": ""}]},
        {"not_events": []},
    ],
    ids=["oversized", "empty", "bad-type", "bad-device", "big-properties", "blank-name", "no-events"],
)
def test_telemetry_batch_validation_inserts_nothing(body):
    _, client = _owner_client()
    response = client.post("/api/v1/telemetry/batch", body, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert not TelemetryEvent.objects.exists()


def test_telemetry_batch_is_rate_limited(monkeypatch):
    from analytics.api import views

    monkeypatch.setattr(views, "TELEMETRY_BATCHES_PER_MINUTE", 2)
    _, client = _owner_client()
    body = {"events": [_event()]}
    codes = [client.post("/api/v1/telemetry/batch", body, format="json").status_code for _ in range(3)]
    assert codes == [201, 201, 429]


def test_telemetry_purge_keeps_recent_events():
    from datetime import timedelta

    from django.utils import timezone

    from analytics.services import telemetry_purge
    from tests.factories import TelemetryEventFactory

    old, recent = TelemetryEventFactory(), TelemetryEventFactory()
    TelemetryEvent.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=91))
    assert telemetry_purge() == 1
    assert list(TelemetryEvent.objects.values_list("pk", flat=True)) == [recent.pk]
