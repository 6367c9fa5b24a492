"""The catalogue (categories, products, reviews, releases) and what customers own of it."""

from decimal import Decimal

from django.db import models
from django.db.models import Q
from django.utils import timezone

from celaest.db import SoftDeleteModel, TimeStampedModel, UUIDModel
from celaest.money import CurrencyField, MoneyField

from .versions import validate_version, version_parse, version_sort_key


class ProductCategory(TimeStampedModel):
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=120, unique=True)
    description = models.TextField(blank=True)
    parent = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True, related_name="children")
    sort_order = models.IntegerField(default=0)
    is_active = models.BooleanField(default=True)

    class Meta:
        db_table = "product_categories"
        ordering = ["sort_order", "name"]
        verbose_name_plural = "product categories"

    def __str__(self):
        return self.name


class Product(SoftDeleteModel):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        PUBLISHED = "published", "Published"
        ARCHIVED = "archived", "Archived"

    category = models.ForeignKey(
        ProductCategory, on_delete=models.PROTECT, null=True, blank=True, related_name="products"
    )
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=120, unique=True)
    summary = models.CharField(max_length=300, blank=True)
    description = models.TextField(blank=True)
    price = MoneyField()
    currency = CurrencyField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    plan = models.ForeignKey(
        "licensing.SubscriptionPlan",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="products",
        help_text="Buying the product grants a license of this plan.",
    )
    license_term_days = models.PositiveIntegerField(null=True, blank=True)
    asset_term_days = models.PositiveIntegerField(null=True, blank=True, help_text="Empty: owned for ever.")
    avg_rating = models.DecimalField(max_digits=3, decimal_places=2, default=Decimal("0"))
    review_count = models.PositiveIntegerField(default=0)
    download_count = models.PositiveBigIntegerField(default=0)
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "products"
        ordering = ["name"]
        indexes = [
            models.Index(
                fields=["category", "name"],
                name="idx_products_published",
                condition=Q(status="published", deleted_at__isnull=True),
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(price__gte=0), name="products_price_non_negative"),
            models.CheckConstraint(condition=Q(avg_rating__gte=0, avg_rating__lte=5), name="products_avg_rating_0_5"),
        ]

    def __str__(self):
        return self.name


class ProductReview(TimeStampedModel):
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="reviews")
    user = models.ForeignKey("identity.User", on_delete=models.CASCADE, related_name="product_reviews")
    rating = models.PositiveSmallIntegerField()
    title = models.CharField(max_length=200, blank=True)
    comment = models.TextField(blank=True)
    is_verified = models.BooleanField(default=False)

    class Meta:
        db_table = "product_reviews"
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["product", "user"], name="reviews_one_per_user_product"),
            models.CheckConstraint(condition=Q(rating__gte=1, rating__lte=5), name="reviews_rating_1_5"),
        ]

    def __str__(self):
        return f"{self.rating}★ {self.title}"


class ProductRelease(TimeStampedModel):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        PUBLISHED = "published", "Published"
        YANKED = "yanked", "Yanked"

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="releases")
    version = models.CharField(
        max_length=64, validators=[validate_version], help_text="Semantic version, e.g. 1.10.0 or 2.0.0-rc.1"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    release_notes = models.TextField(blank=True)
    download_url = models.CharField(max_length=2048, blank=True)
    checksum_sha256 = models.CharField(max_length=64, blank=True)
    file_size = models.PositiveBigIntegerField(null=True, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    # Derived from ``version`` on every save, so the database orders releases by precedence.
    version_major = models.PositiveBigIntegerField(default=0, editable=False)
    version_minor = models.PositiveBigIntegerField(default=0, editable=False)
    version_patch = models.PositiveBigIntegerField(default=0, editable=False)
    version_prerelease = models.CharField(max_length=64, blank=True, editable=False)
    version_sort_key = models.CharField(
        max_length=300, blank=True, editable=False, help_text="Semantic precedence as sortable hex text."
    )

    class Meta:
        db_table = "product_releases"
        ordering = ["product", "-version_sort_key"]
        indexes = [models.Index(fields=["product", "version_sort_key"], name="idx_releases_precedence")]
        constraints = [
            models.UniqueConstraint(fields=["product", "version"], name="releases_version_unique"),
            models.CheckConstraint(
                condition=~Q(status="published") | Q(checksum_sha256__regex=r"^[0-9a-f]{64}$"),
                name="releases_published_have_checksum",
            ),
        ]

    def __str__(self):
        return f"{self.product_id} {self.version}"

    _VERSION_FIELDS = ("version_major", "version_minor", "version_patch", "version_prerelease", "version_sort_key")

    def save(self, *args, **kwargs):
        # Derived columns, not a business rule: they must follow ``version`` however the row is
        # written (services, admin, seed data).
        parsed = version_parse(self.version)
        self.version_major, self.version_minor, self.version_patch = parsed.major, parsed.minor, parsed.patch
        self.version_prerelease = parsed.prerelease
        self.version_sort_key = version_sort_key(parsed)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "version" in update_fields:
            kwargs["update_fields"] = {*update_fields, *self._VERSION_FIELDS}
        super().save(*args, **kwargs)


class CustomerAsset(TimeStampedModel):
    """A product an organization's user owns, granted by a paid order."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        EXPIRED = "expired", "Expired"
        REVOKED = "revoked", "Revoked"

    organization = models.ForeignKey("identity.Organization", on_delete=models.PROTECT, related_name="customer_assets")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="customer_assets")
    user = models.ForeignKey("identity.User", on_delete=models.PROTECT, related_name="customer_assets")
    license = models.ForeignKey(
        "licensing.License", on_delete=models.SET_NULL, null=True, blank=True, related_name="customer_assets"
    )
    order = models.ForeignKey(
        "billing.Order", on_delete=models.PROTECT, null=True, blank=True, related_name="customer_assets"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    granted_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "customer_assets"
        ordering = ["-granted_at"]
        indexes = [
            models.Index(
                fields=["organization", "product"], name="idx_assets_org_active", condition=Q(status="active")
            ),
            models.Index(fields=["user", "product"], name="idx_assets_user_product"),
        ]

    def __str__(self):
        return f"{self.product_id} for {self.user_id}"


class AssetDownload(UUIDModel):
    asset = models.ForeignKey(CustomerAsset, on_delete=models.CASCADE, related_name="downloads")
    release = models.ForeignKey(ProductRelease, on_delete=models.PROTECT, related_name="downloads")
    user = models.ForeignKey("identity.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        db_table = "asset_downloads"
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["asset", "created_at"], name="idx_downloads_asset")]

    def __str__(self):
        return f"{self.release_id} by {self.user_id}"
