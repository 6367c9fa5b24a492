import pytest

from marketplace.models import Product
from tests.db import raises_integrity_error
from tests.factories import (
    ProductCategoryFactory,
    ProductFactory,
    ProductReleaseFactory,
    ProductReviewFactory,
)

pytestmark = pytest.mark.django_db


def test_category_and_product_slugs_are_unique():
    ProductCategoryFactory(slug="tools")
    with raises_integrity_error():
        ProductCategoryFactory(slug="tools")
    ProductFactory(slug="widget")
    with raises_integrity_error():
        ProductFactory(slug="widget")


@pytest.mark.parametrize("rating", [0, 6])
def test_review_rating_is_1_to_5(rating):
    with raises_integrity_error():
        ProductReviewFactory(rating=rating)


def test_one_review_per_user_and_product():
    review = ProductReviewFactory()
    with raises_integrity_error():
        ProductReviewFactory(product=review.product, user=review.user)


def test_product_price_and_rating_ranges():
    with raises_integrity_error():
        ProductFactory(price=-1)
    with raises_integrity_error():
        ProductFactory(avg_rating="5.10")


def test_published_release_needs_a_checksum():
    ProductReleaseFactory(status="draft", checksum_sha256="")
    with raises_integrity_error():
        ProductReleaseFactory(status="published", checksum_sha256="")
    with raises_integrity_error():
        ProductReleaseFactory(status="published", checksum_sha256="not-a-sha256")


def test_release_version_is_unique_per_product():
    release = ProductReleaseFactory(version="1.0.0")
    ProductReleaseFactory(version="1.0.0")  # another product
    with raises_integrity_error():
        ProductReleaseFactory(product=release.product, version="1.0.0")


def test_soft_deleted_product_is_hidden():
    product = ProductFactory()
    product.soft_delete()
    assert not Product.objects.filter(pk=product.pk).exists()
