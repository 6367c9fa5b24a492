"""Seed the licensing benchmark: 10,000 licenses (100 organizations), one active machine each,
and 1,000,000 rows of license_validations. Idempotent: seeds only what is missing, and trims the
rows earlier runs added back to the million, so every run starts on the same table.
Writes the (key, fingerprint, ip) lines wrk draws from. Run with DJANGO_SETTINGS_MODULE set."""

import sys
from datetime import timedelta
from pathlib import Path

import django

django.setup()

from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from identity.models import Organization  # noqa: E402
from ipcontrol.models import LicenseIpBinding  # noqa: E402
from licensing.models import License, SubscriptionPlan  # noqa: E402
from licensing.services import license_key_generate  # noqa: E402

LICENSES = 10_000
ORGS = 100
VALIDATIONS = 1_000_000


def _ip(n: int) -> str:
    return f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


def seed(machines_file: Path) -> None:
    if License.objects.filter(notes="bench").count() < LICENSES:
        with transaction.atomic():
            plan, _ = SubscriptionPlan.objects.get_or_create(
                code="bench", defaults={"name": "Bench", "price_monthly": 10, "price_yearly": 100,
                                        "limits": {"max_machines": 3, "max_users": 10}},
            )  # fmt: skip
            orgs = Organization.objects.bulk_create(
                [Organization(name=f"Bench {n}", slug=f"lic-bench-{n}") for n in range(ORGS)]
            )
            now = timezone.now()
            licenses = License.objects.bulk_create(
                [
                    License(
                        organization=orgs[n % ORGS],
                        plan=plan,
                        license_key=license_key_generate(),
                        expires_at=now + timedelta(days=365),
                        notes="bench",
                    )
                    for n in range(LICENSES)
                ],
                batch_size=2000,
            )
            LicenseIpBinding.objects.bulk_create(
                [
                    LicenseIpBinding(
                        organization_id=lic.organization_id,
                        license=lic,
                        machine_id=f"fp-{n}",
                        hostname=f"ws-{n}",
                        ip_address=_ip(n),
                    )  # fmt: skip
                    for n, lic in enumerate(licenses)
                ],
                batch_size=2000,
            )
    # Heartbeats carry leases (a day long: none lapses between runs); a machine released anyway
    # (a database kept for longer) gets its seat back, so every run starts from the same state.
    SubscriptionPlan.objects.filter(code="bench").update(heartbeat_window_seconds=86400)
    LicenseIpBinding.objects.filter(license__notes="bench", is_active=False).update(
        is_active=True, deactivated_at=None, deactivation_reason="", lease_expires_at=None
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM license_validations")
        existing = cursor.fetchone()[0]
        missing = VALIDATIONS - existing
        if missing > 0:
            # Set-based: one INSERT ... SELECT over the bench bindings, spread over 30 days.
            cursor.execute(
                """
                WITH b AS (
                    SELECT b.id, b.license_id, b.organization_id, b.ip_address, b.machine_id, b.hostname,
                           row_number() OVER (ORDER BY b.id) - 1 AS n
                    FROM license_ip_bindings b JOIN licenses l ON l.id = b.license_id WHERE l.notes = 'bench'
                )
                INSERT INTO license_validations (id, license_id, organization_id, ip_binding_id, ip_address,
                    machine_id, hostname, is_valid, result_code, failure_reason, created_at)
                SELECT gen_random_uuid(), b.license_id, b.organization_id, b.id, b.ip_address, b.machine_id,
                       b.hostname, (g %% 20) <> 0, CASE WHEN g %% 20 = 0 THEN 'NO_MACHINE' ELSE 'VALID' END,
                       CASE WHEN g %% 20 = 0 THEN 'The license is not activated on this machine.' ELSE '' END,
                       now() - (g %% 43200) * interval '1 minute'
                FROM generate_series(1, %s) AS g JOIN b ON b.n = g %% %s
                """,
                [missing, LICENSES],
            )
        elif missing < 0:
            # Earlier runs' rows (the newest): trimmed, so that every run starts on the same table.
            cursor.execute(
                "DELETE FROM license_validations WHERE id IN "
                "(SELECT id FROM license_validations ORDER BY created_at DESC LIMIT %s)",
                [-missing],
            )
            print(f"trimmed {-missing} validation rows of earlier runs")
    with connection.cursor() as cursor:  # VACUUM cannot run inside the DELETE's transaction
        if missing < 0:
            cursor.execute("VACUUM license_validations")
        cursor.execute("ANALYZE license_validations; ANALYZE licenses; ANALYZE license_ip_bindings")
    lines = (
        License.objects.filter(notes="bench")
        .order_by("pk")
        .values_list("license_key", "ip_bindings__machine_id", "ip_bindings__ip_address")
    )
    machines_file.write_text("".join(f"{key} {fp} {ip}\n" for key, fp, ip in lines))
    licenses = License.objects.filter(notes="bench").count()
    print(f"seeded: {licenses} licenses, {VALIDATIONS} validation rows")


if __name__ == "__main__":
    seed(Path(sys.argv[1]))
