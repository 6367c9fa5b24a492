"""Demo license IP/machine bindings, validations and collisions."""

import random
import uuid
from datetime import timedelta

from demo.loaders.base import (
    DEMO_ORG_SLUG,
    HISTORY_DAYS,
    SECOND_ORG_SLUG,
    DemoRun,
    demo_uuid,
    fingerprint,
    insert_missing,
    moment_in_history,
)
from ipcontrol.models import LicenseCollision, LicenseIpBinding, LicenseValidation
from ipcontrol.rollups import validation_days_rollup
from licensing.models import License

# org, license name, binding name, ip, hostname, active
_BINDINGS = (
    (DEMO_ORG_SLUG, "primary", "ws-dana", "203.0.113.10", "DANA-LAPTOP", True),
    (DEMO_ORG_SLUG, "primary", "ws-marcus", "203.0.113.11", "MARCUS-WS", True),
    (DEMO_ORG_SLUG, "primary", "build-01", "198.51.100.20", "ci-build-01", True),
    (DEMO_ORG_SLUG, "primary", "old-laptop", "203.0.113.99", "OLD-LAPTOP", False),
    (DEMO_ORG_SLUG, "trial", "ws-priya", "203.0.113.12", "PRIYA-MBP", True),
    (DEMO_ORG_SLUG, "trial", "ws-tom", "203.0.113.13", "TOM-PC", True),
    (SECOND_ORG_SLUG, "primary", "plant-a", "192.0.2.50", "PLANTA-SRV", True),
    (SECOND_ORG_SLUG, "primary", "plant-b", "2001:db8::51", "PLANTB-SRV", True),
)


def seed_ipcontrol(demo: DemoRun) -> None:
    for org_slug, license_name, name, ip, hostname, active in _BINDINGS:
        first_seen = demo.now - timedelta(days=25 + len(name))
        demo.bindings[(org_slug, name)], _ = LicenseIpBinding.objects.get_or_create(
            license=demo.licenses[(org_slug, license_name)],
            machine_id=fingerprint("demo-machine", org_slug, name),
            defaults={
                "organization": demo.orgs[org_slug],
                "ip_address": ip,
                "hostname": hostname,
                "is_active": active,
                "first_seen": first_seen,
                "activated_at": first_seen,
                "last_seen": demo.now - timedelta(minutes=7 if active else 60 * 24 * 20),
                "deactivated_at": None if active else demo.now - timedelta(days=20),
                "activation_count": 1 if active else 2,
                "created_at": first_seen,
            },
        )

    collisions = (
        # key, org, license, a, b, type, severity, resolved days ago, details
        (
            "demo-cloned",
            DEMO_ORG_SLUG,
            "primary",
            "build-01",
            None,
            LicenseCollision.CollisionType.CLONED_MACHINE,
            LicenseCollision.Severity.HIGH,
            None,
            {"ips": ["198.51.100.20", "198.51.100.77"], "window_minutes": 15, "validations": 42},
        ),
        (
            "demo-over-limit",
            DEMO_ORG_SLUG,
            "primary",
            "ws-dana",
            "old-laptop",
            LicenseCollision.CollisionType.OVER_LIMIT,
            LicenseCollision.Severity.MEDIUM,
            18,
            {"max_machines": 3, "active_machines": 4},
        ),
        (
            "acme-churn",
            SECOND_ORG_SLUG,
            "primary",
            "plant-b",
            None,
            LicenseCollision.CollisionType.ACTIVATION_CHURN,
            LicenseCollision.Severity.LOW,
            None,
            {"activations_last_hour": 6},
        ),
    )
    for key, org_slug, license_name, a, b, kind, severity, resolved_days_ago, details in collisions:
        detected = demo.now - timedelta(days=(resolved_days_ago or 0) + 2)
        resolved = demo.now - timedelta(days=resolved_days_ago) if resolved_days_ago else None
        LicenseCollision.objects.get_or_create(
            pk=demo_uuid("collision", key),
            defaults={
                "organization": demo.orgs[org_slug],
                "license": demo.licenses[(org_slug, license_name)],
                "ip_binding_a": demo.bindings[(org_slug, a)],
                "ip_binding_b": demo.bindings[(org_slug, b)] if b else None,
                "collision_type": kind,
                "severity": severity,
                "details": details,
                "detected_at": detected,
                "last_seen_at": resolved or demo.now - timedelta(minutes=12),
                "resolved_at": resolved,
                "auto_resolved": resolved is not None,
                "resolution_note": "Anomaly stopped for 24 h" if resolved else "",
                "created_at": detected,
            },
        )

    seed_validations(demo)


def seed_validations(demo: DemoRun) -> None:
    rng = random.Random("validations")
    plans: list[tuple[str, License | None, LicenseIpBinding | None, bool, str, str]] = []
    for (org_slug, _), binding in demo.bindings.items():
        license_ = binding.license
        valid = binding.is_active and license_.status in (License.Status.ACTIVE, License.Status.TRIAL)
        code = "VALID" if valid else "NO_MACHINE"
        plans += [(org_slug, license_, binding, valid, code, "")] * 20
    failures = (
        ("suspended", "SUSPENDED", "License is suspended: payment overdue"),
        ("expired", "EXPIRED", "License expired"),
        ("revoked", "REVOKED", "License was revoked"),
    )
    for license_name, code, reason in failures:
        plans += [(DEMO_ORG_SLUG, demo.licenses[(DEMO_ORG_SLUG, license_name)], None, False, code, reason)] * 4
    plans += [(DEMO_ORG_SLUG, demo.licenses[(DEMO_ORG_SLUG, "trial")], None, False, "TOO_MANY_MACHINES", "2 of 2")] * 3
    plans += [(None, None, None, False, "NOT_FOUND", "No license with this key")] * 5

    def build(i: int, pk: uuid.UUID) -> LicenseValidation:
        org_slug, license_, binding, valid, code, reason = plans[i]
        return LicenseValidation(
            id=pk,
            license=license_,
            organization=demo.orgs[org_slug] if org_slug else None,
            ip_binding=binding,
            ip_address=binding.ip_address if binding else f"198.51.100.{rng.randint(100, 200)}",
            machine_id=binding.machine_id if binding else fingerprint("unknown", i),
            hostname=binding.hostname if binding else f"host-{i}",
            is_valid=valid,
            result_code=code,
            failure_reason=reason if reason != "2 of 2" else "Too many machines: 2 of 2 already active",
            created_at=moment_in_history(rng, demo.now),
        )

    insert_missing(LicenseValidation, [demo_uuid("validation", i) for i in range(len(plans))], build)
    rollup_validation_history(demo.now)


def rollup_validation_history(now) -> None:
    """The daily counts the rollup job keeps, over the demo's history (recounted: a rerun adds none)."""
    for days_ago in range(HISTORY_DAYS + 1):
        validation_days_rollup(day=(now - timedelta(days=days_ago)).date())
