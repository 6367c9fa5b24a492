"""Reads for the marketplace: what customers may see of the catalogue, ratings, ownership."""

from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Count, QuerySet, Sum

from identity.models import User

from .models import CustomerAsset, Product, ProductCategory, ProductRelease, ProductReview

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
