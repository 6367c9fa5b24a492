"""Demo data for every CELAEST table: a realistic, idempotent seed for demos, the admin and benchmarks.

``demo_seed`` builds the base demo: the staff superuser ``admin@celaest.local``, the customer
organization ``demo`` (owner ``owner@demo.celaest.local``) and a second tenant ``acme`` with their
own users and data, so tenant isolation can be shown. Every one of the 36 tables gets rows.
``scale`` > 0 adds benchmark volumes on top (per unit: 10 organizations, 1,000 licenses, 10,000
processed tasks, 10,000 license validations, 5,000 telemetry events, ...).

Running it again adds nothing. Rows with a natural key (slug, email, code, ...) are looked up by
it; the others get a deterministic UUID (uuid5 of what they are), and volumes are inserted chunk by
chunk, skipping the ids already present. Derived rows (daily ROI, license usage per month, product
rating and download counters) are recomputed from the tasks, reviews and downloads with upserts.

Secrets are generated, never hard-coded: license keys, provider keys (stored encrypted), user API
keys and session tokens (stored as hashes), webhook secrets (encrypted, plus a hash). The two logins
the seed prints keep a stable password across runs: ``DEMO_ADMIN_PASSWORD`` / ``DEMO_OWNER_PASSWORD``
when set, else one generated on the first run and kept in ``VAR_DIR/demo-credentials.json``.

Each domain's rows come from its loader in ``demo/loaders/``; the rules come from the apps
themselves, never re-typed here: license keys (``licensing.services``), order amounts and gateway
fees (``billing.pricing``), task cost (``operations.services.usage_cost``), webhook secrets
(``settings_app.services``), ROI (``analytics.services``) and license usage (``licensing.rollup``).
"""

from pathlib import Path

from django.utils import timezone

from aimesh.models import AIApiKey, AIModel, Prompt
from analytics.models import RoiMetric, TelemetryEvent
from audit.models import AuditLog, SystemEvent
from billing.models import (
    Coupon,
    CreditNote,
    DocumentSequence,
    Invoice,
    Order,
    OrderItem,
    PaymentGateway,
    PaymentMethod,
    Subscription,
    TaxRate,
    UsageAlert,
)
from billing.services.numbering import document_sequences_sync
from demo.loaders.ai_licenses import seed_ai_licenses
from demo.loaders.aimesh import seed_ai_catalogue
from demo.loaders.analytics import seed_telemetry
from demo.loaders.audit import seed_audit
from demo.loaders.base import (
    DEMO_ORG_SLUG,
    SECOND_ORG_SLUG,
    DemoCredentials,
    DemoRun,
    DemoSeedError,
    OutputStream,
    default_credentials_path,
    demo_credentials_resolve,
    section,
)
from demo.loaders.bench import seed_bench
from demo.loaders.billing import seed_billing
from demo.loaders.derived import refresh_derived
from demo.loaders.identity import seed_identity
from demo.loaders.ipcontrol import seed_ipcontrol
from demo.loaders.licensing import seed_licenses, seed_plans
from demo.loaders.marketplace import seed_catalogue, seed_ownership
from demo.loaders.operations import seed_operations
from demo.loaders.settings import retire_outside_urls, seed_settings
from demo.loaders.subscriptions import seed_subscriptions
from identity.models import Organization, User
from ipcontrol.certificates import certificate_issue
from ipcontrol.models import LicenseCollision, LicenseIpBinding, LicenseValidation, OfflineCertificate
from ipcontrol.offline import license_file_issue
from ipcontrol.selectors import ipcontrol_config
from licensing.models import License, LicenseUsageLog, SubscriptionPlan
from marketplace.models import (
    AssetDownload,
    CustomerAsset,
    Product,
    ProductCategory,
    ProductRelease,
    ProductReview,
)
from operations.models import ApiKeyLicense, OrganizationAILicense, ProcessedTask, TaskBatch
from settings_app.models import FeatureFlag, SystemConfig, UserApiKey, UserSession, Webhook, WebhookDelivery


def demo_seed(
    *, scale: int = 0, credentials_path: Path | None = None, stdout: OutputStream | None = None
) -> DemoCredentials:
    """Seed the base demo (and ``scale`` units of benchmark volume); return the two working logins.

    Idempotent: a second run with the same ``scale`` adds no row. Each module is seeded in its own
    transaction, so a failure leaves whole modules, and a rerun completes the rest.
    """
    if scale < 0:
        raise DemoSeedError("scale must be 0 (base demo only) or a positive number of benchmark units")
    credentials = demo_credentials_resolve(path=credentials_path or default_credentials_path(), stdout=stdout)
    demo = DemoRun(now=timezone.now())

    with section("identity", [Organization, User], stdout):
        seed_identity(demo, credentials=credentials)
    with section("licensing", [SubscriptionPlan, License], stdout):
        seed_plans(demo)
        seed_licenses(demo)
    with section("aimesh", [AIModel, AIApiKey, Prompt], stdout):
        seed_ai_catalogue(demo)
    with section("marketplace catalogue", [ProductCategory, Product, ProductRelease], stdout):
        seed_catalogue(demo)
    with section("billing", [PaymentGateway, PaymentMethod, Coupon, TaxRate, Order, OrderItem, Invoice], stdout):
        seed_billing(demo)
    with section("marketplace ownership", [CustomerAsset, AssetDownload, ProductReview], stdout):
        seed_ownership(demo)
    with section("ipcontrol", [LicenseIpBinding, LicenseValidation, LicenseCollision, OfflineCertificate], stdout):
        seed_ipcontrol(demo)
        seed_offline_certificates(demo)
    with section("operations", [TaskBatch, ProcessedTask], stdout):
        seed_operations(demo)
    with section("settings", [UserSession, UserApiKey, Webhook, WebhookDelivery, SystemConfig, FeatureFlag], stdout):
        seed_settings(demo)
        retire_outside_urls()
    with section("AI paying licenses", [OrganizationAILicense, ApiKeyLicense], stdout):
        seed_ai_licenses(demo)
    with section("audit", [AuditLog, SystemEvent], stdout):
        seed_audit(demo)
    with section("analytics telemetry", [TelemetryEvent], stdout):
        seed_telemetry(demo)

    organization_ids = demo.organization_ids
    if scale:
        organization_ids += seed_bench(demo, scale=scale, stdout=stdout)

    with section("billing numbering", [DocumentSequence], stdout):
        document_sequences_sync()  # numbers above were allocated here, outside the sequences
    with section("derived (roi, usage)", [RoiMetric, LicenseUsageLog], stdout):
        refresh_derived(demo, organization_ids=organization_ids)
    with section("subscriptions", [Subscription, Invoice, CreditNote, UsageAlert], stdout):
        seed_subscriptions(demo)
    return credentials


#: demo machines given an offline document, and how: (org slug, binding name, issue)
_OFFLINE_MACHINES = (
    (DEMO_ORG_SLUG, "build-01", certificate_issue),
    (DEMO_ORG_SLUG, "ws-dana", license_file_issue),
    (SECOND_ORG_SLUG, "plant-a", certificate_issue),
)


def seed_offline_certificates(demo: DemoRun) -> None:
    """A certificate or a license file for a few demo machines, issued (and so recorded) by
    ipcontrol itself; once per machine."""
    ttl_hours = ipcontrol_config().certificate_ttl_hours
    for org_slug, name, issue in _OFFLINE_MACHINES:
        binding = demo.bindings[(org_slug, name)]
        if not OfflineCertificate.objects.filter(license=binding.license, fingerprint=binding.machine_id).exists():
            issue(license=binding.license, fingerprint=binding.machine_id, now=demo.now, ttl_hours=ttl_hours)
