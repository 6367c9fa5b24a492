"""Demo subscription plans and licenses (keys from the licensing service's generator)."""

from datetime import timedelta
from decimal import Decimal

from demo.loaders.base import DEMO_ORG_SLUG, SECOND_ORG_SLUG, DemoRun, backdate_issued_at, demo_uuid
from licensing.models import License, LicenseToken, SubscriptionPlan
from licensing.services import license_key_generate, license_token_create

_BASE_FEATURES = ["ai_tasks", "roi_dashboard", "license_validation", "email_support"]
_PLANS = (
    {
        "code": "starter",
        "name": "Starter",
        "description": "For small teams trying AI automation.",
        "price_monthly": Decimal("29.00"),
        "price_yearly": Decimal("290.00"),
        "sort_order": 10,
        "limits": {
            "max_users": 5,
            "ai_requests_per_month": 2_000,
            "tokens_per_month": 2_000_000,
            "max_machines": 2,
            "max_batch_size": 50,
        },
        "features": _BASE_FEATURES,
    },
    {
        "code": "pro",
        "name": "Pro",
        "description": "Batches, webhooks and API keys for growing teams.",
        "price_monthly": Decimal("99.00"),
        "price_yearly": Decimal("990.00"),
        "sort_order": 20,
        "limits": {
            "max_users": 25,
            "ai_requests_per_month": 20_000,
            "tokens_per_month": 25_000_000,
            "max_machines": 10,
            "max_batch_size": 500,
        },
        "features": [*_BASE_FEATURES, "batches", "webhooks", "api_keys", "priority_support"],
    },
    {
        "code": "enterprise",
        "name": "Enterprise",
        "description": "Custom models, SSO and audit export, with a dedicated contact.",
        "price_monthly": Decimal("499.00"),
        "price_yearly": Decimal("4990.00"),
        "sort_order": 30,
        "limits": {
            "max_users": 250,
            "ai_requests_per_month": 250_000,
            "tokens_per_month": 300_000_000,
            "max_machines": 100,
            "max_batch_size": 5_000,
        },
        "features": [
            *_BASE_FEATURES,
            "batches",
            "webhooks",
            "api_keys",
            "priority_support",
            "sso",
            "custom_models",
            "audit_export",
            "dedicated_support",
        ],
    },
)

# organization, name, plan, status, issued days ago, expires in days, extra fields
_LICENSES = (
    (DEMO_ORG_SLUG, "primary", "pro", License.Status.ACTIVE, 30, 335, {}),
    (DEMO_ORG_SLUG, "trial", "starter", License.Status.TRIAL, 5, 9, {}),
    (
        DEMO_ORG_SLUG,
        "suspended",
        "pro",
        License.Status.SUSPENDED,
        120,
        245,
        {"status_reason": "Payment overdue: invoice unpaid for 30 days"},
    ),
    (DEMO_ORG_SLUG, "expired", "starter", License.Status.EXPIRED, 377, -12, {}),
    (
        DEMO_ORG_SLUG,
        "revoked",
        "enterprise",
        License.Status.REVOKED,
        200,
        165,
        {"status_reason": "Reissued after the key was posted in a public forum"},
    ),
    (
        SECOND_ORG_SLUG,
        "primary",
        "enterprise",
        License.Status.ACTIVE,
        65,
        300,
        {"custom_limits": {"max_machines": 25, "ai_requests_per_month": 300_000}},
    ),
    (SECOND_ORG_SLUG, "trial", "pro", License.Status.TRIAL, 9, 5, {}),
)


def seed_plans(demo: DemoRun) -> None:
    for spec in _PLANS:
        defaults = {key: value for key, value in spec.items() if key != "code"}
        demo.plans[spec["code"]], _ = SubscriptionPlan.objects.get_or_create(code=spec["code"], defaults=defaults)


def seed_licenses(demo: DemoRun) -> None:
    for org_slug, name, plan_code, status, issued_days_ago, expires_in_days, extra in _LICENSES:
        issued = demo.now - timedelta(days=issued_days_ago)
        defaults = {
            "organization": demo.orgs[org_slug],
            "plan": demo.plans[plan_code],
            "status": status,
            "license_key": license_key_generate,
            "created_at": issued,
            "expires_at": demo.now + timedelta(days=expires_in_days),
            "notes": f"Demo license ({name}).",
            **extra,
        }
        if status == License.Status.SUSPENDED:
            defaults["suspended_at"] = demo.now - timedelta(days=3)
        if status == License.Status.REVOKED:
            defaults["revoked_at"] = demo.now - timedelta(days=7)
        license_, created = License.all_objects.get_or_create(
            pk=demo_uuid("license", org_slug, name), defaults=defaults
        )
        if created:
            backdate_issued_at([license_.pk])
        demo.licenses[(org_slug, name)] = license_
    _seed_license_token(demo)


def _seed_license_token(demo: DemoRun) -> None:
    """A token for installed software on the first demo license (its secret is not kept)."""
    license_ = next(iter(demo.licenses.values()))
    if not LicenseToken.objects.filter(license=license_).exists():
        license_token_create(license=license_, name="Demo installer")
