"""Reads for the marketplace: what customers may see of the catalogue, ratings, ownership."""

from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Count, QuerySet, Sum

from identity.models import User

from .models import CustomerAsset, Product, ProductCategory, ProductRelease, ProductReview
from .versions import SemVer, version_sort_key

_RATING_PLACES = Decimal("0.01")


def product_category_visible(*, queryset: QuerySet[ProductCategory]) -> QuerySet[ProductCategory]:
    return queryset.filter(is_active=True)


def product_visible(*, queryset: QuerySet[Product]) -> QuerySet[Product]:
    """Products a customer may see: published and not deleted."""
    return queryset.filter(status=Product.Status.PUBLISHED, deleted_at__isnull=True)


def product_release_visible(*, queryset: QuerySet[ProductRelease]) -> QuerySet[ProductRelease]:
    """Releases a customer may see: published releases of visible products."""
    return queryset.filter(
        status=ProductRelease.Status.PUBLISHED,
        product__status=Product.Status.PUBLISHED,
        product__deleted_at__isnull=True,
    )


def product_review_visible(*, queryset: QuerySet[ProductReview]) -> QuerySet[ProductReview]:
    """Reviews a customer may read: those of visible products."""
    return queryset.filter(product__status=Product.Status.PUBLISHED, product__deleted_at__isnull=True)


def product_rating_summary(*, product_id) -> tuple[Decimal, int]:
    """The exact average rating (two places, half up) and the number of reviews of a product."""
    # Integer sum and count, divided as Decimals: a float average would round 4.005 down.
    summary = ProductReview.objects.filter(product_id=product_id).aggregate(total=Sum("rating"), count=Count("id"))
    if not summary["count"]:
        return Decimal("0.00"), 0
    average = Decimal(summary["total"]) / Decimal(summary["count"])
    return average.quantize(_RATING_PLACES, rounding=ROUND_HALF_UP), summary["count"]


def product_owned_by(*, user: User, product: Product) -> bool:
    """Whether the user's organization holds (or held) the product — a review is then verified."""
    if user.organization_id is None:
        return False
    return (
        CustomerAsset.objects.filter(organization_id=user.organization_id, product=product)
        .exclude(status=CustomerAsset.Status.REVOKED)
        .exists()
    )


def product_release_latest(*, product: Product, include_prereleases: bool = False) -> ProductRelease | None:
    """The product's published release of highest semantic precedence (1.10.0 above 1.9.0;
    pre-releases only when asked for, and then below the release of the same version)."""
    releases = ProductRelease.objects.filter(product=product, status=ProductRelease.Status.PUBLISHED)
    if not include_prereleases:
        releases = releases.filter(version_prerelease="")
    return releases.order_by("-version_sort_key", "-created_at").first()


def product_upgrade_check(
    *, product: Product, current: SemVer | None, include_prereleases: bool = False
) -> tuple[ProductRelease | None, bool]:
    """The latest published release, and whether it is newer than ``current`` (any release is
    an upgrade when the caller has none)."""
    latest = product_release_latest(product=product, include_prereleases=include_prereleases)
    if latest is None:
        return None, False
    if current is None:
        return latest, True
    return latest, latest.version_sort_key > version_sort_key(current)


def release_download_location_is_servable(location: str) -> bool:
    """Whether a download link may redirect to ``location``: an absolute http(s) URL, or a path
    on this platform (``/static/...``: the demo's releases, files served next to the API). Not
    ``//host/...`` nor ``/\\host``, which browsers take for another host."""
    if location.startswith(("https://", "http://")):
        return True
    return location.startswith("/") and not location.startswith(("//", "/\\"))
