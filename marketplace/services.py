"""Writes for the marketplace: the catalogue staff manage, the reviews customers write, the
assets an order grants (and a refund takes back), and signed, expiring download links to the
releases customers own.

A product's ``avg_rating`` and ``review_count`` are recomputed from its reviews in the same
transaction as every review change, with the product row locked, so they are always exact.
"""

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from celaest.db import delete_unless_referenced
from celaest.errors import Conflict, Forbidden, InvalidInput, NotFound
from identity.models import User

from .models import AssetDownload, CustomerAsset, Product, ProductCategory, ProductRelease, ProductReview
from .selectors import product_owned_by, product_rating_summary, product_release_latest

_CHECKSUM_RE = re.compile(r"^[0-9a-f]{64}$")


def _apply(instance, changes: dict[str, Any]) -> list[str]:
    fields = []
    for name, value in changes.items():
        if getattr(instance, name) != value:
            setattr(instance, name, value)
            fields.append(name)
    return fields


# --- categories ------------------------------------------------------------------------------


def _check_category_parent(*, category: ProductCategory | None, parent: ProductCategory | None) -> None:
    """A category cannot be its own ancestor."""
    if category is None or parent is None:
        return
    seen = set()
    node = parent
    while node is not None and node.pk not in seen:
        if node.pk == category.pk:
            raise InvalidInput(
                "A category cannot be placed under itself or one of its subcategories.",
                details={"parent": ["This would create a cycle."]},
            )
        seen.add(node.pk)
        node = node.parent


@transaction.atomic
def product_category_create(
    *,
    name: str,
    slug: str,
    description: str = "",
    parent: ProductCategory | None = None,
    sort_order: int = 0,
    is_active: bool = True,
) -> ProductCategory:
    return ProductCategory.objects.create(
        name=name, slug=slug, description=description, parent=parent, sort_order=sort_order, is_active=is_active
    )


@transaction.atomic
def product_category_update(*, category: ProductCategory, **changes: Any) -> ProductCategory:
    if "parent" in changes:
        _check_category_parent(category=category, parent=changes["parent"])
    fields = _apply(category, changes)
    if fields:
        category.save(update_fields=[*fields, "updated_at"])
    return category


def product_category_delete(*, category: ProductCategory) -> None:
    delete_unless_referenced(
        category,
        message="This category still has products or subcategories; move them or deactivate the category.",
        code="category_in_use",
    )


# --- products --------------------------------------------------------------------------------


def _stamp_published(instance, *, published_status: str) -> None:
    if instance.status == published_status and instance.published_at is None:
        instance.published_at = timezone.now()


@transaction.atomic
def product_create(**fields: Any) -> Product:
    """Create a product from its catalogue fields (``name``, ``slug``, ``price``, ...)."""
    product = Product(**fields)
    _stamp_published(product, published_status=Product.Status.PUBLISHED)
    product.save()
    return product


@transaction.atomic
def product_update(*, product: Product, **changes: Any) -> Product:
    fields = _apply(product, changes)
    if "status" in fields and product.published_at is None:
        _stamp_published(product, published_status=Product.Status.PUBLISHED)
        fields.append("published_at")
    if fields:
        product.save(update_fields=[*fields, "updated_at"])
    return product


def product_delete(*, product: Product) -> None:
    """Products are soft-deleted: orders, assets and reviews keep pointing at them."""
    product.soft_delete()


# --- releases --------------------------------------------------------------------------------


def _check_release_publishable(release: ProductRelease) -> None:
    if release.status == ProductRelease.Status.PUBLISHED and not _CHECKSUM_RE.match(release.checksum_sha256 or ""):
        raise InvalidInput(
            "A published release needs the SHA-256 checksum of its file.",
            code="checksum_required",
            details={"checksum_sha256": ["Required (64 lowercase hex digits) to publish."]},
        )


@transaction.atomic
def product_release_create(**fields: Any) -> ProductRelease:
    """Create a release from its fields (``product``, ``version``, ``status``, ...)."""
    release = ProductRelease(**fields)
    _check_release_publishable(release)
    _stamp_published(release, published_status=ProductRelease.Status.PUBLISHED)
    try:
        with transaction.atomic():
            release.save()
    except IntegrityError as exc:
        raise Conflict("This product already has a release with this version.", code="release_exists") from exc
    return release


@transaction.atomic
def product_release_update(*, release: ProductRelease, **changes: Any) -> ProductRelease:
    fields = _apply(release, changes)
    _check_release_publishable(release)
    if "status" in fields and release.published_at is None:
        _stamp_published(release, published_status=ProductRelease.Status.PUBLISHED)
        fields.append("published_at")
    if fields:
        try:
            with transaction.atomic():
                release.save(update_fields=[*fields, "updated_at"])
        except IntegrityError as exc:
            raise Conflict("This product already has a release with this version.", code="release_exists") from exc
    return release


def product_release_delete(*, release: ProductRelease) -> None:
    delete_unless_referenced(
        release,
        message="This release has been downloaded; yank it instead of deleting it.",
        code="release_downloaded",
    )


# --- reviews ---------------------------------------------------------------------------------


def _check_rating(rating: int) -> None:
    if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
        raise InvalidInput("A rating is a whole number from 1 to 5.", details={"rating": ["Must be 1 to 5."]})


def _lock_product(product_id) -> Product:
    return Product.all_objects.select_for_update().get(pk=product_id)


def _refresh_rating(product: Product) -> None:
    """Recompute the product's rating from its reviews; the caller holds the product's lock."""
    product.avg_rating, product.review_count = product_rating_summary(product_id=product.pk)
    product.save(update_fields=["avg_rating", "review_count", "updated_at"])


@transaction.atomic
def product_review_create(
    *, user: User, product: Product, rating: int, title: str = "", comment: str = ""
) -> ProductReview:
    """One review per user and product. Verified when the reviewer's organization owns it."""
    _check_rating(rating)
    locked = _lock_product(product.pk)
    if locked.status != Product.Status.PUBLISHED or locked.deleted_at is not None:
        raise InvalidInput("Only published products can be reviewed.", details={"product": ["Not available."]})
    if ProductReview.objects.filter(product=locked, user=user).exists():
        raise Conflict("You have already reviewed this product; edit your review instead.", code="review_exists")
    review = ProductReview.objects.create(
        product=locked,
        user=user,
        rating=rating,
        title=title,
        comment=comment,
        is_verified=product_owned_by(user=user, product=locked),
    )
    _refresh_rating(locked)
    return review


@transaction.atomic
def product_review_update(
    *, review: ProductReview, rating: int | None = None, title: str | None = None, comment: str | None = None
) -> ProductReview:
    locked = _lock_product(review.product_id)
    if rating is not None:
        _check_rating(rating)
    changes = {"rating": rating, "title": title, "comment": comment}
    fields = _apply(review, {name: value for name, value in changes.items() if value is not None})
    if fields:
        review.save(update_fields=[*fields, "updated_at"])
        if "rating" in fields:
            _refresh_rating(locked)
    return review


@transaction.atomic
def product_review_delete(*, review: ProductReview) -> None:
    locked = _lock_product(review.product_id)
    review.delete()
    _refresh_rating(locked)


# --- customer assets -------------------------------------------------------------------------


def customer_assets_grant(*, order, grants: list[tuple[Product, Any]], now: datetime) -> list[CustomerAsset]:
    """The assets an order gives its buyer: one per ``(product, license)`` in ``grants`` (the
    license the unit carries, or None), granted ``now`` for the product's asset term. Billing
    calls it inside the transaction that records the payment."""
    return CustomerAsset.objects.bulk_create(
        [
            CustomerAsset(
                organization=order.organization,
                product=product,
                user=order.user,
                license=license,
                order=order,
                granted_at=now,
                expires_at=now + timedelta(days=product.asset_term_days) if product.asset_term_days else None,
            )
            for product, license in grants
        ]
    )


def customer_assets_revoke(*, order, now: datetime) -> list[CustomerAsset]:
    """Revoke the live assets ``order`` granted (a refund, a paid order cancelled), their rows
    locked in a fixed order; returns them as they were before (with the licenses they carry).
    Billing calls it inside the transaction that takes the order back."""
    assets = list(
        CustomerAsset.objects.select_for_update()
        .filter(order=order)
        .exclude(status=CustomerAsset.Status.REVOKED)
        .order_by("pk")
    )
    CustomerAsset.objects.filter(pk__in=[asset.pk for asset in assets]).update(
        status=CustomerAsset.Status.REVOKED, revoked_at=now, updated_at=now
    )
    return assets


# --- downloads -------------------------------------------------------------------------------

_DOWNLOAD_SALT = "marketplace.asset-download"


class DownloadLinkRefused(Forbidden):
    code = "download_link_invalid"
    message = "This download link is invalid or has expired; ask for a new one."


@dataclass(frozen=True)
class DownloadLink:
    token: str
    release: ProductRelease
    expires_at: datetime


def _check_downloadable(*, asset: CustomerAsset, release: ProductRelease | None, now: datetime) -> ProductRelease:
    if asset.status != CustomerAsset.Status.ACTIVE:
        raise Conflict(f"This asset is {asset.status}.", code="asset_inactive")
    if asset.expires_at is not None and asset.expires_at <= now:
        raise Conflict("This asset has expired.", code="asset_expired")
    if release is None:
        release = product_release_latest(product=asset.product) or product_release_latest(
            product=asset.product, include_prereleases=True
        )
        if release is None:
            raise NotFound("This product has no published release yet.", code="no_release")
    if release.product_id != asset.product_id or release.status != ProductRelease.Status.PUBLISHED:
        raise NotFound("No such published release of this product.", code="no_release")
    return release


def asset_download_link_create(
    *, asset: CustomerAsset, user: User, release: ProductRelease | None = None
) -> DownloadLink:
    """A signed link to download a release (the latest by default) of an asset the user owns.

    The link is a bearer token: whoever presents it within ``ASSET_DOWNLOAD_LINK_SECONDS`` gets
    the file, signed in or not, whichever organization they belong to. Only the asset's owner can
    ask for one, and it is good for that asset and release only; the download is logged against
    the owner it was issued to. Treat it like a password that expires in minutes: it is meant to be
    handed to a browser, a package manager or a CI job that has no CELAEST login."""
    if asset.user_id != user.pk:
        raise Forbidden("Only the owner of this asset can download it.", code="not_asset_owner")
    now = timezone.now()
    release = _check_downloadable(asset=asset, release=release, now=now)
    token = signing.dumps({"a": str(asset.pk), "r": str(release.pk), "u": str(user.pk)}, salt=_DOWNLOAD_SALT)
    return DownloadLink(
        token=token, release=release, expires_at=now + timedelta(seconds=settings.ASSET_DOWNLOAD_LINK_SECONDS)
    )


@transaction.atomic
def asset_download_follow(*, asset_id, token: str, ip_address: str | None, user_agent: str = "") -> ProductRelease:
    """Check a signed link and record the download (the owner it was issued to, and the address
    and user agent that followed it), counting it on the product atomically; returns the release
    to serve. The asset is checked again: a link does not outlive a refund.

    The caller's own identity plays no part: the link is a bearer token (see
    ``asset_download_link_create``). Refusing a signed-in stranger while serving an anonymous one
    protected nothing, since the stranger only had to drop their credentials."""
    try:
        claims = signing.loads(token, salt=_DOWNLOAD_SALT, max_age=settings.ASSET_DOWNLOAD_LINK_SECONDS)
    except signing.SignatureExpired as exc:
        raise DownloadLinkRefused(
            "This download link has expired; ask for a new one.", code="download_link_expired"
        ) from exc
    except signing.BadSignature as exc:
        raise DownloadLinkRefused() from exc
    if not isinstance(claims, dict) or claims.get("a") != str(asset_id):
        raise DownloadLinkRefused()
    asset = CustomerAsset.objects.select_related("product").filter(pk=asset_id, user_id=claims.get("u")).first()
    release = ProductRelease.objects.filter(pk=claims.get("r")).first()
    if asset is None or release is None:
        raise DownloadLinkRefused()
    release = _check_downloadable(asset=asset, release=release, now=timezone.now())
    AssetDownload.objects.create(
        asset=asset, release=release, user_id=asset.user_id, ip_address=ip_address, user_agent=(user_agent or "")[:500]
    )
    Product.all_objects.filter(pk=asset.product_id).update(download_count=F("download_count") + 1)
    return release
