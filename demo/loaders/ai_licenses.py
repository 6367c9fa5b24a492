"""Demo data of the AI gateway's budgets: which license pays for each organization's calls, and a
key with limits, all through the services (operations.ai_licenses, settings_app's api_key_update)."""

from decimal import Decimal

from demo.loaders.base import DEMO_ORG_SLUG, SECOND_ORG_SLUG, DemoRun, demo_uuid
from operations.ai_licenses import ai_license_designate, api_key_license_bind
from settings_app.models import UserApiKey
from settings_app.services.api_keys import api_key_update


def seed_ai_licenses(demo: DemoRun) -> None:
    for org_slug in (DEMO_ORG_SLUG, SECOND_ORG_SLUG):
        ai_license_designate(
            organization=demo.orgs[org_slug],
            license=demo.licenses[(org_slug, "primary")],
            actor=demo.person(org_slug, "owner"),
        )
    ci_key = UserApiKey.objects.get(pk=demo_uuid("api-key", "demo-ci"))
    api_key_license_bind(
        api_key=ci_key, license=demo.licenses[(DEMO_ORG_SLUG, "primary")], actor=demo.person(DEMO_ORG_SLUG, "owner")
    )
    api_key_update(
        api_key=ci_key,
        spend_limit_daily_usd=Decimal("25"),
        spend_limit_monthly_usd=Decimal("400"),
        tokens_per_minute=200_000,
        max_requests_in_flight=8,
    )
