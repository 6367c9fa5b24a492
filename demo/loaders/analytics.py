"""Demo telemetry events."""

import random
import uuid
from datetime import datetime, timedelta

from analytics.models import TelemetryEvent
from demo.loaders.base import (
    BENCH_ROLES,
    DEMO_ORG_SLUG,
    SECOND_ORG_SLUG,
    DemoRun,
    demo_uuid,
    insert_missing,
    moment_in_history,
)

_TELEMETRY = (
    ("page_view", "dashboard.viewed", "/app/dashboard", TelemetryEvent.DeviceType.DESKTOP),
    ("page_view", "licenses.viewed", "/app/licenses", TelemetryEvent.DeviceType.DESKTOP),
    ("page_view", "roi.viewed", "/app/analytics/roi", TelemetryEvent.DeviceType.TABLET),
    ("feature_use", "batch.created", "/app/batches/new", TelemetryEvent.DeviceType.DESKTOP),
    ("feature_use", "task.run", "/app/tasks/new", TelemetryEvent.DeviceType.MOBILE),
    ("feature_use", "report.exported", "/app/analytics/roi", TelemetryEvent.DeviceType.DESKTOP),
    ("feature_use", "api_key.created", "/app/settings/api-keys", TelemetryEvent.DeviceType.DESKTOP),
    ("error", "upload.failed", "/app/batches/new", TelemetryEvent.DeviceType.MOBILE),
    ("app", "desktop.started", "", TelemetryEvent.DeviceType.DESKTOP),
    ("app", "desktop.license_checked", "", TelemetryEvent.DeviceType.SERVER),
)


def telemetry_row(
    rng: random.Random, *, pk: uuid.UUID, organization_id: uuid.UUID, user_id: uuid.UUID | None, now: datetime
) -> TelemetryEvent:
    event_type, name, path, device = rng.choice(_TELEMETRY)
    occurred = moment_in_history(rng, now)
    properties: dict[str, object] = {}
    if event_type == "page_view":
        properties = {"duration_ms": rng.randint(300, 45_000)}
    elif event_type == "error":
        properties = {"error": rng.choice(["file_too_large", "unsupported_format"])}
    elif event_type == "app":
        properties = {"version": rng.choice(["1.0.0", "1.1.0"]), "os": rng.choice(["Windows 11", "macOS 14"])}
    return TelemetryEvent(
        id=pk,
        organization_id=organization_id,
        user_id=user_id,
        event_type=event_type,
        event_name=name,
        properties=properties,
        page_url=f"https://app.celaest.local{path}" if path else "",
        device_type=device,
        session_id=f"s_{pk.hex[:16]}",
        occurred_at=occurred,
        created_at=occurred + timedelta(seconds=rng.randint(1, 30)),
    )


def seed_telemetry(demo: DemoRun) -> None:
    rng = random.Random("telemetry")
    for org_slug, count in ((DEMO_ORG_SLUG, 80), (SECOND_ORG_SLUG, 30)):
        org = demo.orgs[org_slug]
        users = [demo.person(org_slug, role) for role in BENCH_ROLES]

        def build(i: int, pk: uuid.UUID, org=org, users=users) -> TelemetryEvent:
            user = rng.choice(users) if i % 10 else None  # some events come from the desktop app, unauthenticated
            return telemetry_row(rng, pk=pk, organization_id=org.pk, user_id=user.pk if user else None, now=demo.now)

        insert_missing(TelemetryEvent, [demo_uuid("telemetry", org_slug, i) for i in range(count)], build)
