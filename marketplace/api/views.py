"""Marketplace endpoints: the catalogue (read by customers, written by staff), reviews, and the
assets an organization owns with their download log."""

from django.db.models import QuerySet
from django.http import HttpResponseRedirect
from django.urls import reverse
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.filters import SearchFilter
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from celaest.api import permissions as perms
from celaest.api.pagination import CreatedAtCursorPagination
from celaest.api.schema import crud_schema
from celaest.api.viewsets import CatalogViewSet, CrudMixin, OwnViewSet, ReadOnlyMixin, TenantViewSet
from celaest.errors import NotFound
from celaest.net import client_ip
from marketplace import selectors, services
from marketplace.filters import (
    AssetDownloadFilterSet,
    CustomerAssetFilterSet,
    ProductCategoryFilterSet,
    ProductFilterSet,
    ProductReleaseFilterSet,
    ProductReviewFilterSet,
    ReleaseOrderingFilter,
)
from marketplace.models import AssetDownload, CustomerAsset, Product, ProductCategory, ProductRelease, ProductReview

from .serializers import (
    AssetDownloadSerializer,
    CustomerAssetSerializer,
    DownloadLinkSerializer,
    DownloadRequestSerializer,
    MyProductReviewSerializer,
    ProductCategorySerializer,
    ProductReleasePublicSerializer,
    ProductReleaseSerializer,
    ProductReviewSerializer,
    ProductSerializer,
    ReleaseUpgradeQuerySerializer,
    ReleaseUpgradeSerializer,
)


@extend_schema_view(
    **crud_schema("a product category", "product categories", destroy="Delete an unused product category (staff)")
)
class ProductCategoryViewSet(CatalogViewSet, CrudMixin):
    """Customers see active categories; staff see and manage all of them."""

    serializer_class = ProductCategorySerializer
    scope_resource = "product-categories"
    filterset_class = ProductCategoryFilterSet
    search_fields = ["name", "slug"]
    ordering_fields = ["sort_order", "name", "created_at"]
    ordering = ["sort_order", "name"]

    def scoped_queryset(self) -> QuerySet:
        return ProductCategory.objects.all()

    def visible_to_customers(self, queryset: QuerySet) -> QuerySet:
        return selectors.product_category_visible(queryset=queryset)

    def perform_create(self, serializer):
        serializer.instance = services.product_category_create(**serializer.validated_data)

    def perform_update(self, serializer):
        services.product_category_update(category=serializer.instance, **serializer.validated_data)

    def perform_destroy(self, instance):
        services.product_category_delete(category=instance)


@extend_schema_view(**crud_schema("a product", "products", destroy="Delete a product (staff; soft delete)"))
class ProductViewSet(CatalogViewSet, CrudMixin):
    """Customers see published products; staff see drafts and archived ones too."""

    serializer_class = ProductSerializer
    scope_resource = "products"
    filterset_class = ProductFilterSet
    search_fields = ["name", "slug", "summary"]
    ordering_fields = ["name", "price", "avg_rating", "review_count", "published_at", "created_at"]
    ordering = ["name"]

    def scoped_queryset(self) -> QuerySet:
        return Product.objects.select_related("category")

    def visible_to_customers(self, queryset: QuerySet) -> QuerySet:
        return selectors.product_visible(queryset=queryset)

    def perform_create(self, serializer):
        serializer.instance = services.product_create(**serializer.validated_data)

    def perform_update(self, serializer):
        services.product_update(product=serializer.instance, **serializer.validated_data)

    def perform_destroy(self, instance):
        services.product_delete(product=instance)


@extend_schema_view(
    **crud_schema(
        "a product release",
        "product releases",
        partial_update="Update or publish a product release (staff)",
        destroy="Delete a never-downloaded product release (staff)",
    )
)
class ProductReleaseViewSet(CatalogViewSet, CrudMixin):
    """Customers see published releases of published products, without the file's location."""

    serializer_class = ProductReleaseSerializer
    scope_resource = "product-releases"
    filterset_class = ProductReleaseFilterSet
    filter_backends = [DjangoFilterBackend, SearchFilter, ReleaseOrderingFilter]
    search_fields = ["version", "release_notes"]
    ordering_fields = ["created_at", "published_at", "version"]
    ordering = ["-created_at"]

    def scoped_queryset(self) -> QuerySet:
        return ProductRelease.objects.all()

    def visible_to_customers(self, queryset: QuerySet) -> QuerySet:
        return selectors.product_release_visible(queryset=queryset)

    def get_serializer_class(self):
        user = getattr(self.request, "user", None)
        if self._is_schema_generation() or (user is not None and user.is_staff):
            return ProductReleaseSerializer
        return ProductReleasePublicSerializer

    def perform_create(self, serializer):
        serializer.instance = services.product_release_create(**serializer.validated_data)

    def perform_update(self, serializer):
        services.product_release_update(release=serializer.instance, **serializer.validated_data)

    def perform_destroy(self, instance):
        services.product_release_delete(release=instance)


@extend_schema_view(
    list=extend_schema(summary="List reviews of published products"),
    retrieve=extend_schema(summary="Get a product review"),
    destroy=extend_schema(summary="Remove a review (staff moderation)"),
)
class ProductReviewViewSet(CatalogViewSet, ReadOnlyMixin, mixins.DestroyModelMixin):
    """Every review of published products, readable by any customer; staff may remove one.
    Customers write their own reviews through ``my-product-reviews``."""

    serializer_class = ProductReviewSerializer
    scope_resource = "product-reviews"
    filterset_class = ProductReviewFilterSet
    search_fields = ["title", "comment"]
    ordering_fields = ["created_at", "rating"]
    ordering = ["-created_at"]

    def scoped_queryset(self) -> QuerySet:
        return ProductReview.objects.select_related("user")

    def visible_to_customers(self, queryset: QuerySet) -> QuerySet:
        return selectors.product_review_visible(queryset=queryset)

    def perform_destroy(self, instance):
        services.product_review_delete(review=instance)


@extend_schema_view(
    list=extend_schema(summary="List my product reviews"),
    retrieve=extend_schema(summary="Get one of my product reviews"),
    create=extend_schema(summary="Review a product (one review per product)"),
    update=extend_schema(summary="Replace my review"),
    partial_update=extend_schema(summary="Update my review"),
    destroy=extend_schema(summary="Delete my review"),
)
class MyProductReviewViewSet(OwnViewSet, CrudMixin):
    """The caller's own reviews. The product's rating is recomputed on every change."""

    serializer_class = MyProductReviewSerializer
    scope_resource = "my-product-reviews"
    filterset_class = ProductReviewFilterSet
    ordering_fields = ["created_at", "rating"]
    ordering = ["-created_at"]

    def scoped_queryset(self) -> QuerySet:
        return ProductReview.objects.select_related("user")

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        review = services.product_review_create(user=request.user, **serializer.validated_data)
        return Response(self.get_serializer(review).data, status=status.HTTP_201_CREATED)

    def perform_update(self, serializer):
        data = dict(serializer.validated_data)
        data.pop("product", None)  # fixed once written; the serializer refuses a different one
        services.product_review_update(review=serializer.instance, **data)

    def perform_destroy(self, instance):
        services.product_review_delete(review=instance)


@extend_schema_view(
    list=extend_schema(summary="List my organization's products (customer assets)"),
    retrieve=extend_schema(summary="Get a customer asset"),
    download=extend_schema(
        summary="A signed, expiring link to download a release of my asset",
        request=DownloadRequestSerializer,
        responses=DownloadLinkSerializer,
    ),
)
class CustomerAssetViewSet(TenantViewSet, ReadOnlyMixin):
    serializer_class = CustomerAssetSerializer
    scope_resource = "assets"
    filterset_class = CustomerAssetFilterSet
    search_fields = ["product__name"]
    ordering_fields = ["granted_at", "expires_at", "created_at"]
    ordering = ["-granted_at"]

    def scoped_queryset(self) -> QuerySet:
        return CustomerAsset.objects.select_related("product")

    @action(detail=True, methods=["post"])
    def download(self, request, *args, **kwargs):
        asset = self.get_object()
        query = DownloadRequestSerializer(data=request.data)
        query.is_valid(raise_exception=True)
        release = None
        if query.validated_data.get("release"):
            release = ProductRelease.objects.filter(pk=query.validated_data["release"]).first()
            if release is None:
                raise NotFound("No such release.", code="no_release")
        link = services.asset_download_link_create(asset=asset, user=request.user, release=release)
        path = reverse("asset-download-follow", kwargs={"asset_id": asset.pk, "token": link.token})
        body = {
            "url": request.build_absolute_uri(path),
            "expires_at": link.expires_at,
            "release": link.release,
        }
        return Response(DownloadLinkSerializer(body).data)


@extend_schema_view(
    list=extend_schema(summary="List downloads of my organization's assets"),
    retrieve=extend_schema(summary="Get an asset download"),
)
class AssetDownloadViewSet(TenantViewSet, ReadOnlyMixin):
    """The append-only download log, newest first, paged by cursor."""

    serializer_class = AssetDownloadSerializer
    scope_resource = "asset-downloads"
    organization_field = "asset__organization"
    pagination_class = CreatedAtCursorPagination
    filterset_class = AssetDownloadFilterSet
    filter_backends = [DjangoFilterBackend]  # the cursor fixes the order

    def scoped_queryset(self) -> QuerySet:
        return AssetDownload.objects.select_related("release")


class ProductLatestReleaseView(GenericAPIView):
    """``GET /products/{slug}/releases/latest?current=1.2.0``: what installed software asks to
    learn whether a newer release of its product is out."""

    serializer_class = ReleaseUpgradeSerializer
    permission_classes = [IsAuthenticated, perms.RolePermission, perms.ApiKeyScopePermission]
    scope_resource = "products"
    read_roles = perms.ALL_ROLES
    write_roles = frozenset()

    @extend_schema(
        summary="The latest release of a product, and whether it upgrades the installed version",
        parameters=[ReleaseUpgradeQuerySerializer],
        responses=ReleaseUpgradeSerializer,
    )
    def get(self, request, slug: str):
        query = ReleaseUpgradeQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        products = Product.objects.all()
        if not request.user.is_staff:
            products = selectors.product_visible(queryset=products)
        product = products.filter(slug=slug).first()
        if product is None:
            raise NotFound("No such product.")
        current = query.validated_data.get("current")
        latest, upgrade = selectors.product_upgrade_check(
            product=product, current=current, include_prereleases=query.validated_data["prerelease"]
        )
        body = {
            "product": product.slug,
            "current": str(current) if current else None,
            "upgrade_available": upgrade,
            "latest": ProductReleasePublicSerializer(latest).data if latest is not None else None,
        }
        return Response(body)


class AssetDownloadFollowView(APIView):
    """Where a signed download link leads. The link is a bearer token: no login needed, and
    whoever is signed in (if anyone) is not consulted, so an anonymous client and a user of any
    organization get the same answer. Records the download and redirects to the file."""

    # Not even read: a stale session or an unknown API key sent along (a CI job's default
    # header) would otherwise turn a good link into a 401.
    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(summary="Follow a signed download link (redirects to the file)", responses={302: None})
    def get(self, request, asset_id, token: str):
        release = services.asset_download_follow(
            asset_id=asset_id,
            token=token,
            ip_address=client_ip(request),
            user_agent=request.headers.get("User-Agent", ""),
        )
        if not selectors.release_download_location_is_servable(release.download_url):
            raise NotFound("The file of this release is not available for download.", code="artifact_missing")
        return HttpResponseRedirect(release.download_url)
