"""Filtersets for marketplace endpoints.

Foreign keys are filtered by id (``UUIDFilter``): no lookup query per request, and an id the
caller may not see simply matches nothing.
"""

import django_filters
from rest_framework.filters import OrderingFilter

from celaest.api.filters import ApiFilterSet

from .models import AssetDownload, CustomerAsset, Product, ProductCategory, ProductRelease, ProductReview


class ProductCategoryFilterSet(ApiFilterSet):
    parent = django_filters.UUIDFilter(field_name="parent_id")
    root = django_filters.BooleanFilter(field_name="parent", lookup_expr="isnull", label="Top-level categories only")

    class Meta:
        model = ProductCategory
        fields = {"slug": ["exact"], "is_active": ["exact"]}


class ProductFilterSet(ApiFilterSet):
    category = django_filters.UUIDFilter(field_name="category_id")
    category_slug = django_filters.CharFilter(field_name="category__slug")
    plan = django_filters.UUIDFilter(field_name="plan_id")

    class Meta:
        model = Product
        fields = {
            "slug": ["exact"],
            "status": ["exact"],
            "currency": ["exact"],
            "price": ["gte", "lte"],
            "avg_rating": ["gte"],
        }


class ProductReleaseFilterSet(ApiFilterSet):
    product = django_filters.UUIDFilter(field_name="product_id")

    class Meta:
        model = ProductRelease
        fields = {"status": ["exact"], "version": ["exact"]}


class ProductReviewFilterSet(ApiFilterSet):
    product = django_filters.UUIDFilter(field_name="product_id")

    class Meta:
        model = ProductReview
        fields = {"rating": ["exact", "gte", "lte"], "is_verified": ["exact"]}


class CustomerAssetFilterSet(ApiFilterSet):
    product = django_filters.UUIDFilter(field_name="product_id")
    user = django_filters.UUIDFilter(field_name="user_id")
    license = django_filters.UUIDFilter(field_name="license_id")

    class Meta:
        model = CustomerAsset
        fields = {"status": ["exact"], "expires_at": ["gte", "lte", "isnull"]}


class AssetDownloadFilterSet(ApiFilterSet):
    asset = django_filters.UUIDFilter(field_name="asset_id")
    release = django_filters.UUIDFilter(field_name="release_id")
    user = django_filters.UUIDFilter(field_name="user_id")
    created_at = django_filters.IsoDateTimeFromToRangeFilter()

    class Meta:
        model = AssetDownload
        fields = ["asset", "release", "user", "created_at"]


class ReleaseOrderingFilter(OrderingFilter):
    """``?ordering=version`` sorts releases by semantic precedence (1.10.0 after 1.9.0), not as text."""

    def get_ordering(self, request, queryset, view):
        ordering = super().get_ordering(request, queryset, view)
        if not ordering:
            return ordering
        return [
            term.replace("version", "version_sort_key") if term.lstrip("-") == "version" else term for term in ordering
        ]
