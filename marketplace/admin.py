"""Admin of the catalogue (categories, products with releases, reviews) and what customers own."""

from django.contrib import admin

from celaest.admin import (
    CelaestModelAdmin,
    GeneratedRecordAdminMixin,
    LargeTableAdmin,
    SoftDeleteAdminMixin,
)

from .models import AssetDownload, CustomerAsset, Product, ProductCategory, ProductRelease, ProductReview
from .services import product_review_delete


@admin.register(ProductCategory)
class ProductCategoryAdmin(CelaestModelAdmin):
    list_display = ["name", "slug", "parent", "sort_order", "is_active"]
    list_filter = ["is_active"]
    list_select_related = ["parent"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    autocomplete_fields = ["parent"]
    readonly_fields = ["created_at", "updated_at"]


class ProductReleaseInline(admin.TabularInline):
    model = ProductRelease
    fields = ["version", "status", "download_url", "checksum_sha256", "file_size", "published_at"]
    extra = 0
    show_change_link = True


@admin.register(Product)
class ProductAdmin(SoftDeleteAdminMixin, CelaestModelAdmin):
    list_display = [
        "name",
        "slug",
        "category",
        "status",
        "price",
        "currency",
        "plan",
        "avg_rating",
        "review_count",
        "download_count",
        "is_deleted",
    ]
    list_filter = ["status", "category"]
    list_select_related = ["category", "plan"]
    search_fields = ["name", "slug", "summary"]
    prepopulated_fields = {"slug": ["name"]}
    autocomplete_fields = ["category", "plan"]
    readonly_fields = ["avg_rating", "review_count", "download_count", "created_at", "updated_at", "deleted_at"]
    inlines = [ProductReleaseInline]
    fieldsets = [
        (None, {"fields": ["name", "slug", "category", "status", "published_at", "summary", "description"]}),
        ("Price", {"fields": ["price", "currency"]}),
        ("What buying it grants", {"fields": ["plan", "license_term_days", "asset_term_days"]}),
        ("Statistics", {"fields": ["avg_rating", "review_count", "download_count"]}),
        ("Record", {"fields": ["created_at", "updated_at", "deleted_at"], "classes": ["collapse"]}),
    ]


@admin.register(ProductReview)
class ProductReviewAdmin(CelaestModelAdmin):
    """Moderation: customers write reviews; staff may edit their text or delete them.

    A review written or re-rated here would be a fake one, and would leave the product's rating
    stale; deleting goes through the service, which recomputes that rating.
    """

    list_display = ["product", "user", "rating", "title", "is_verified", "created_at"]
    list_filter = ["rating", "is_verified"]
    list_select_related = ["product", "user"]
    search_fields = ["title", "product__name", "user__email"]
    fields = ["product", "user", "rating", "is_verified", "title", "comment", "created_at", "updated_at"]
    readonly_fields = ["product", "user", "rating", "is_verified", "created_at", "updated_at"]

    def has_add_permission(self, request):
        return False

    def delete_model(self, request, obj):
        product_review_delete(review=obj)

    def delete_queryset(self, request, queryset):
        for review in queryset:
            product_review_delete(review=review)


@admin.register(ProductRelease)
class ProductReleaseAdmin(CelaestModelAdmin):
    list_display = ["product", "version", "status", "published_at", "file_size", "created_at"]
    list_filter = ["status"]
    list_select_related = ["product"]
    search_fields = ["version", "product__name", "product__slug"]
    autocomplete_fields = ["product"]
    readonly_fields = ["created_at", "updated_at"]


@admin.register(CustomerAsset)
class CustomerAssetAdmin(CelaestModelAdmin):
    list_display = ["product", "user", "organization", "license", "order", "status", "granted_at", "expires_at"]
    list_filter = ["status"]
    list_select_related = ["product", "user", "organization", "license", "order"]
    search_fields = ["product__name", "user__email", "organization__slug", "order__order_number"]
    autocomplete_fields = ["organization", "product", "user", "license", "order"]
    date_hierarchy = "granted_at"
    readonly_fields = ["created_at", "updated_at"]


@admin.register(AssetDownload)
class AssetDownloadAdmin(GeneratedRecordAdminMixin, LargeTableAdmin):
    list_display = ["created_at", "product", "version", "user", "ip_address"]
    list_select_related = ["release__product", "user"]
    date_hierarchy = "created_at"
    search_fields = ["user__email__exact", "release__product__slug__exact"]
    search_help_text = "Exact user email, product slug or IP address."
    ip_search_fields = ("ip_address",)

    @admin.display(description="product")
    def product(self, obj):
        return obj.release.product

    @admin.display(description="version", ordering="release__version")
    def version(self, obj):
        return obj.release.version
