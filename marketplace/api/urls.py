"""REST routes of the marketplace app under /api/v1/."""

from django.urls import re_path

from celaest.api.routers import ApiRouter

from .views import (
    AssetDownloadFollowView,
    AssetDownloadViewSet,
    CustomerAssetViewSet,
    MyProductReviewViewSet,
    ProductCategoryViewSet,
    ProductLatestReleaseView,
    ProductReleaseViewSet,
    ProductReviewViewSet,
    ProductViewSet,
)

router = ApiRouter()
router.register("product-categories", ProductCategoryViewSet, basename="product-category")
router.register("products", ProductViewSet, basename="product")
router.register("product-releases", ProductReleaseViewSet, basename="product-release")
router.register("product-reviews", ProductReviewViewSet, basename="product-review")
router.register("my-product-reviews", MyProductReviewViewSet, basename="my-product-review")
router.register("assets", CustomerAssetViewSet, basename="asset")
router.register("asset-downloads", AssetDownloadViewSet, basename="asset-download")

urlpatterns = [
    re_path(
        r"^assets/(?P<asset_id>[0-9a-fA-F-]{36})/download/(?P<token>[A-Za-z0-9_:.\-]+)/?$",
        AssetDownloadFollowView.as_view(),
        name="asset-download-follow",
    ),
    re_path(
        r"^products/(?P<slug>[-a-zA-Z0-9_]+)/releases/latest/?$",
        ProductLatestReleaseView.as_view(),
        name="product-latest-release",
    ),
    *router.urls,
]
