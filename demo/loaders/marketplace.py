"""Demo marketplace: categories, products and releases; then what customers own, download and review."""

import hashlib
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from django.contrib.staticfiles import finders
from django.templatetags.static import static

from demo.loaders.base import DEMO_ORG_SLUG, DEMO_RELEASE_FILE, SECOND_ORG_SLUG, USER_AGENTS, DemoRun, demo_uuid
from marketplace.models import (
    AssetDownload,
    CustomerAsset,
    Product,
    ProductCategory,
    ProductRelease,
    ProductReview,
)

_CATEGORIES = (
    ("software", "Software", None, 10),
    ("desktop-apps", "Desktop apps", "software", 10),
    ("ai-add-ons", "AI add-ons", "software", 20),
    ("services", "Services", None, 20),
    ("training", "Training", "services", 10),
)

# slug, name, category, price, status, plan, license days, asset days, summary
_PRODUCTS = (
    (
        "celaest-desktop",
        "CELAEST Desktop",
        "desktop-apps",
        "99.00",
        Product.Status.PUBLISHED,
        "pro",
        365,
        None,
        "The desktop client: batch AI processing on your own machines, with a Pro license.",
    ),
    (
        "invoice-extractor",
        "Invoice Extractor Add-on",
        "ai-add-ons",
        "49.00",
        Product.Status.PUBLISHED,
        None,
        None,
        None,
        "Turns scanned invoices into structured data.",
    ),
    (
        "onboarding-workshop",
        "Onboarding Workshop (4 h)",
        "training",
        "450.00",
        Product.Status.PUBLISHED,
        None,
        None,
        90,
        "A remote workshop to set up licenses, prompts and batches with your team.",
    ),
    (
        "legacy-connector",
        "Legacy ERP Connector",
        "ai-add-ons",
        "19.00",
        Product.Status.ARCHIVED,
        None,
        None,
        None,
        "Superseded by webhooks.",
    ),
    (
        "analytics-pack",
        "Analytics Pack",
        "ai-add-ons",
        "149.00",
        Product.Status.DRAFT,
        None,
        None,
        None,
        "Extra ROI dashboards (coming soon).",
    ),
)
PUBLISHED_PRODUCTS = ("celaest-desktop", "invoice-extractor", "onboarding-workshop")

# product, version, status, days ago, notes
_RELEASES = (
    ("celaest-desktop", "1.0.0", ProductRelease.Status.PUBLISHED, 90, "First public release."),
    ("celaest-desktop", "1.0.1", ProductRelease.Status.YANKED, 80, "Yanked: broke license activation offline."),
    ("celaest-desktop", "1.1.0", ProductRelease.Status.PUBLISHED, 20, "PDF export, Anthropic models, faster batches."),
    ("celaest-desktop", "2.0.0-rc.1", ProductRelease.Status.DRAFT, 2, "Release candidate: new batch engine."),
    ("invoice-extractor", "0.9.0", ProductRelease.Status.PUBLISHED, 45, "Beta: EUR, USD and GBP invoices."),
)


def seed_catalogue(demo: DemoRun) -> None:
    for slug, name, parent_slug, sort_order in _CATEGORIES:
        demo.categories[slug], _ = ProductCategory.objects.get_or_create(
            slug=slug,
            defaults={
                "name": name,
                "parent": demo.categories[parent_slug] if parent_slug else None,
                "sort_order": sort_order,
            },
        )

    for slug, name, category, price, status, plan, license_days, asset_days, summary in _PRODUCTS:
        published = status != Product.Status.DRAFT
        demo.products[slug], _ = Product.all_objects.get_or_create(
            slug=slug,
            defaults={
                "name": name,
                "category": demo.categories[category],
                "summary": summary,
                "description": f"{summary}\n\nSold by CELAEST. Prices exclude tax.",
                "price": Decimal(price),
                "status": status,
                "plan": demo.plans[plan] if plan else None,
                "license_term_days": license_days,
                "asset_term_days": asset_days,
                "published_at": demo.now - timedelta(days=120) if published else None,
                "created_at": demo.now - timedelta(days=150),
            },
        )

    artifact = finders.find(DEMO_RELEASE_FILE)
    content = Path(artifact).read_bytes()
    for product_slug, version, status, days_ago, notes in _RELEASES:
        demo.releases[(product_slug, version)], _ = ProductRelease.objects.get_or_create(
            product=demo.products[product_slug],
            version=version,
            defaults={
                "status": status,
                "release_notes": notes,
                "download_url": static(DEMO_RELEASE_FILE),
                "checksum_sha256": hashlib.sha256(content).hexdigest(),
                "file_size": len(content),
                "published_at": demo.now - timedelta(days=days_ago) if status != ProductRelease.Status.DRAFT else None,
                "created_at": demo.now - timedelta(days=days_ago),
            },
        )


def seed_ownership(demo: DemoRun) -> None:
    assets = (
        # key, org, product, order, license, status
        ("demo-desktop", DEMO_ORG_SLUG, "celaest-desktop", "demo-1", "primary", CustomerAsset.Status.ACTIVE),
        ("demo-extractor", DEMO_ORG_SLUG, "invoice-extractor", "demo-1", None, CustomerAsset.Status.ACTIVE),
        ("acme-desktop", SECOND_ORG_SLUG, "celaest-desktop", "acme-1", "primary", CustomerAsset.Status.ACTIVE),
        ("acme-extractor", SECOND_ORG_SLUG, "invoice-extractor", "acme-2", None, CustomerAsset.Status.REVOKED),
    )
    for key, org_slug, product_slug, order_key, license_name, status in assets:
        order = demo.orders[order_key]
        asset, _ = CustomerAsset.objects.get_or_create(
            pk=demo_uuid("asset", key),
            defaults={
                "organization": demo.orgs[org_slug],
                "product": demo.products[product_slug],
                "user": demo.person(org_slug, "owner"),
                "license": demo.licenses[(org_slug, license_name)] if license_name else None,
                "order": order,
                "status": status,
                "granted_at": order.paid_at or order.created_at,
                "revoked_at": order.refunded_at if status == CustomerAsset.Status.REVOKED else None,
                "created_at": order.paid_at or order.created_at,
            },
        )
        releases = [
            release
            for (slug, _), release in demo.releases.items()
            if slug == product_slug and release.status == ProductRelease.Status.PUBLISHED
        ]
        for n, release in enumerate(releases):
            for who in ("owner", "admin"):
                AssetDownload.objects.get_or_create(
                    pk=demo_uuid("download", key, release.version, who),
                    defaults={
                        "asset": asset,
                        "release": release,
                        "user": demo.person(org_slug, who),
                        "ip_address": f"203.0.113.{20 + n}" if org_slug == DEMO_ORG_SLUG else "2001:db8::51",
                        "user_agent": USER_AGENTS[n % 2],
                        "created_at": max(asset.granted_at, release.published_at or asset.granted_at)
                        + timedelta(hours=5 + n),
                    },
                )

    reviews = (
        (DEMO_ORG_SLUG, "owner", "celaest-desktop", 5, "Batches saved us a full day a week", True),
        (DEMO_ORG_SLUG, "member", "celaest-desktop", 4, "Solid, PDF export could be faster", False),
        (DEMO_ORG_SLUG, "owner", "invoice-extractor", 4, "Accurate on EUR and USD invoices", True),
        (SECOND_ORG_SLUG, "owner", "celaest-desktop", 3, "Works, but machine limits confuse our IT", True),
        (SECOND_ORG_SLUG, "admin", "invoice-extractor", 2, "Struggled with handwritten invoices", False),
    )
    for org_slug, role, product_slug, rating, title, verified in reviews:
        ProductReview.objects.get_or_create(
            product=demo.products[product_slug],
            user=demo.person(org_slug, role),
            defaults={
                "rating": rating,
                "title": title,
                "comment": f"{title}. Reviewed after a few weeks of daily use.",
                "is_verified": verified,
                "created_at": demo.now - timedelta(days=10 + rating),
            },
        )
