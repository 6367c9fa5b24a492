"""Serializers of the marketplace endpoints: catalogue, reviews, and what customers own."""

import re

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from celaest.errors import InvalidInput
from marketplace.models import AssetDownload, CustomerAsset, Product, ProductCategory, ProductRelease, ProductReview
from marketplace.selectors import release_download_location_is_servable
from marketplace.versions import version_parse

_CHECKSUM_RE = re.compile(r"^[0-9a-fA-F]{64}$")


class ProductCategorySerializer(serializers.ModelSerializer):
    class Meta:
        model = ProductCategory
        fields = ["id", "name", "slug", "description", "parent", "sort_order", "is_active", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]


class ProductSerializer(serializers.ModelSerializer):
    category_slug = serializers.CharField(source="category.slug", read_only=True, allow_null=True)

    class Meta:
        model = Product
        fields = [
            "id", "category", "category_slug", "name", "slug", "summary", "description", "price", "currency",
            "status", "plan", "license_term_days", "asset_term_days", "avg_rating", "review_count",
            "download_count", "published_at", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = [
            "id", "avg_rating", "review_count", "download_count", "published_at", "created_at", "updated_at",
        ]  # fmt: skip
        extra_kwargs = {
            "price": {"min_value": 0},
            "license_term_days": {"min_value": 1},
            "asset_term_days": {"min_value": 1},
        }

    def validate_currency(self, value: str) -> str:
        if len(value) != 3 or not value.isalpha():
            raise serializers.ValidationError("Use a three-letter ISO 4217 code.")
        return value.upper()


class ProductReleaseSerializer(serializers.ModelSerializer):
    """A release as staff see it. Customers get ``ProductReleasePublicSerializer``: the file is
    reached only through an owned asset's signed, logged download link."""

    class Meta:
        model = ProductRelease
        fields = [
            "id", "product", "version", "status", "release_notes", "download_url", "checksum_sha256",
            "file_size", "published_at", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["id", "published_at", "created_at", "updated_at"]

    def validate_version(self, value: str) -> str:
        try:
            version_parse(value)
        except InvalidInput as exc:
            raise serializers.ValidationError(exc.message) from exc
        return value

    def validate_checksum_sha256(self, value: str) -> str:
        if value and not _CHECKSUM_RE.match(value):
            raise serializers.ValidationError("A SHA-256 checksum is 64 hexadecimal digits.")
        return value.lower()

    def validate_download_url(self, value: str) -> str:
        if value and not (value.startswith("s3://") or release_download_location_is_servable(value)):
            raise serializers.ValidationError(
                "Use an http(s):// or s3:// location, or a path the platform serves (/static/...)."
            )
        return value


class ProductReleasePublicSerializer(serializers.ModelSerializer):
    class Meta:
        model = ProductRelease
        fields = [
            "id", "product", "version", "status", "release_notes", "checksum_sha256", "file_size",
            "published_at", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields


class ProductReviewSerializer(serializers.ModelSerializer):
    """A review as anyone reads it: the reviewer is shown by first name and initial only."""

    reviewer_name = serializers.SerializerMethodField()

    class Meta:
        model = ProductReview
        fields = [
            "id", "product", "rating", "title", "comment", "is_verified", "reviewer_name", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(serializers.CharField())
    def get_reviewer_name(self, review: ProductReview) -> str:
        user = review.user
        initial = f" {user.last_name[0]}." if user.last_name else ""
        return (user.first_name + initial).strip() or "Anonymous"


class MyProductReviewSerializer(ProductReviewSerializer):
    """The caller's own review: product is chosen when writing it and fixed afterwards."""

    product = serializers.PrimaryKeyRelatedField(queryset=Product.objects.all())

    class Meta(ProductReviewSerializer.Meta):
        read_only_fields = ["id", "is_verified", "reviewer_name", "created_at", "updated_at"]
        extra_kwargs = {"rating": {"min_value": 1, "max_value": 5}}

    def validate_product(self, product: Product) -> Product:
        if self.instance is not None and product.pk != self.instance.product_id:
            raise serializers.ValidationError("A review cannot be moved to another product.")
        if product.status != Product.Status.PUBLISHED:
            raise serializers.ValidationError("Only published products can be reviewed.")
        return product


class CustomerAssetSerializer(serializers.ModelSerializer):
    product_name = serializers.CharField(source="product.name", read_only=True)
    product_slug = serializers.CharField(source="product.slug", read_only=True)

    class Meta:
        model = CustomerAsset
        fields = [
            "id", "product", "product_name", "product_slug", "user", "license", "order", "status",
            "granted_at", "expires_at", "revoked_at", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields


class AssetDownloadSerializer(serializers.ModelSerializer):
    release_version = serializers.CharField(source="release.version", read_only=True)

    class Meta:
        model = AssetDownload
        fields = ["id", "asset", "release", "release_version", "user", "ip_address", "user_agent", "created_at"]
        read_only_fields = fields


class ReleaseUpgradeQuerySerializer(serializers.Serializer):
    current = serializers.CharField(required=False, allow_blank=True, help_text="The version installed, e.g. 1.2.0.")
    prerelease = serializers.BooleanField(required=False, default=False, help_text="Consider pre-releases too.")

    def validate_current(self, value: str):
        if not value:
            return None
        try:
            return version_parse(value)
        except InvalidInput as exc:
            raise serializers.ValidationError(exc.message) from exc


class ReleaseUpgradeSerializer(serializers.Serializer):
    product = serializers.SlugField()
    current = serializers.CharField(allow_null=True)
    upgrade_available = serializers.BooleanField()
    latest = ProductReleasePublicSerializer(allow_null=True)


class DownloadRequestSerializer(serializers.Serializer):
    release = serializers.UUIDField(required=False, allow_null=True, help_text="Default: the latest published release.")


class DownloadLinkSerializer(serializers.Serializer):
    url = serializers.URLField(help_text="Signed; follow it before it expires. It works for you and this asset only.")
    expires_at = serializers.DateTimeField()
    release = ProductReleasePublicSerializer()
