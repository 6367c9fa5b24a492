"""Marketplace endpoints: what customers see of the catalogue, reviews and exact ratings, assets.

Authentication, tenant isolation, roles and scopes are covered for every endpoint by
tests/test_api_contract.py; these tests are about each endpoint's own behaviour.
"""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from identity.models import User
from marketplace.models import Product, ProductRelease, ProductReview
from tests import factories as f
from tests.clients import client_as

pytestmark = pytest.mark.django_db


def _ids(response) -> set[str]:
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


@pytest.fixture
def member():
    return f.UserFactory(role=User.Role.MEMBER)


# --- catalogue -------------------------------------------------------------------------------


def test_customers_see_only_published_products(member, staff):
    published = f.ProductFactory(status=Product.Status.PUBLISHED)
    draft = f.ProductFactory(status=Product.Status.DRAFT)
    archived = f.ProductFactory(status=Product.Status.ARCHIVED)
    deleted = f.ProductFactory(status=Product.Status.PUBLISHED)
    deleted.soft_delete()

    customer = client_as(member)
    assert _ids(customer.get("/api/v1/products")) == {str(published.pk)}
    assert customer.get(f"/api/v1/products/{draft.pk}").status_code == 404
    assert customer.get(f"/api/v1/products/{deleted.pk}").status_code == 404

    assert _ids(client_as(staff).get("/api/v1/products")) == {str(published.pk), str(draft.pk), str(archived.pk)}


def test_customers_see_only_active_categories(member):
    active = f.ProductCategoryFactory()
    f.ProductCategoryFactory(is_active=False)
    assert _ids(client_as(member).get("/api/v1/product-categories")) == {str(active.pk)}


def test_staff_create_and_publish_a_product(staff):
    category = f.ProductCategoryFactory()
    client = client_as(staff)
    response = client.post(
        "/api/v1/products",
        {"category": str(category.pk), "name": "Widget", "slug": "widget", "price": "19.90", "currency": "eur"},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "draft" and body["published_at"] is None and body["currency"] == "EUR"
    assert body["category_slug"] == category.slug

    response = client.patch(f"/api/v1/products/{body['id']}", {"status": "published"}, format="json")
    assert response.status_code == 200
    assert response.json()["published_at"] is not None


def test_product_input_is_validated_not_crashed(staff):
    f.ProductFactory(slug="taken")
    client = client_as(staff)
    negative = client.post("/api/v1/products", {"name": "X", "slug": "x", "price": "-1"}, format="json")
    assert negative.status_code == 400 and "price" in negative.json()["error"]["details"]
    duplicate = client.post("/api/v1/products", {"name": "X", "slug": "taken", "price": "1"}, format="json")
    assert duplicate.status_code == 400 and "slug" in duplicate.json()["error"]["details"]


def test_deleting_a_product_is_a_soft_delete(staff):
    product = f.ProductFactory()
    assert client_as(staff).delete(f"/api/v1/products/{product.pk}").status_code == 204
    assert Product.all_objects.get(pk=product.pk).deleted_at is not None


def test_category_in_use_cannot_be_deleted(staff):
    product = f.ProductFactory()
    response = client_as(staff).delete(f"/api/v1/product-categories/{product.category_id}")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "category_in_use"


def test_category_cannot_become_its_own_ancestor(staff):
    parent = f.ProductCategoryFactory()
    child = f.ProductCategoryFactory(parent=parent)
    response = client_as(staff).patch(
        f"/api/v1/product-categories/{parent.pk}", {"parent": str(child.pk)}, format="json"
    )
    assert response.status_code == 400
    assert "parent" in response.json()["error"]["details"]


def test_products_list_runs_a_constant_number_of_queries(member):
    def queries_for(count: int) -> int:
        Product.all_objects.all().delete()
        f.ProductFactory.create_batch(count)
        client = client_as(member)
        with CaptureQueriesContext(connection) as captured:
            response = client.get("/api/v1/products?page_size=100")
        assert response.status_code == 200 and len(response.json()["results"]) == count
        return len(captured)

    assert queries_for(5) == queries_for(50)


# --- releases --------------------------------------------------------------------------------


def test_customers_see_published_releases_of_published_products_without_file_location(member, staff):
    product = f.ProductFactory()
    published = f.ProductReleaseFactory(product=product, download_url="https://files.example/x.zip")
    f.ProductReleaseFactory(product=product, status=ProductRelease.Status.DRAFT, checksum_sha256="")
    f.ProductReleaseFactory(product=product, status=ProductRelease.Status.YANKED)
    f.ProductReleaseFactory(product=f.ProductFactory(status=Product.Status.DRAFT))

    response = client_as(member).get("/api/v1/product-releases")
    assert _ids(response) == {str(published.pk)}
    assert "download_url" not in response.json()["results"][0]

    staff_rows = client_as(staff).get("/api/v1/product-releases").json()["results"]
    assert len(staff_rows) == 4
    assert {row["download_url"] for row in staff_rows} >= {"https://files.example/x.zip"}


def test_publishing_a_release_needs_a_checksum(staff):
    product = f.ProductFactory()
    client = client_as(staff)
    payload = {"product": str(product.pk), "version": "1.0.0", "status": "published"}
    response = client.post("/api/v1/product-releases", payload, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "checksum_required"

    response = client.post("/api/v1/product-releases", {**payload, "checksum_sha256": "A" * 64}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["checksum_sha256"] == "a" * 64 and response.json()["published_at"] is not None


def test_release_versions_are_semantic_and_unique_per_product(staff):
    release = f.ProductReleaseFactory(version="2.0.0")
    client = client_as(staff)
    bad = client.post("/api/v1/product-releases", {"product": str(release.product_id), "version": "v2"}, format="json")
    assert bad.status_code == 400 and "version" in bad.json()["error"]["details"]
    duplicate = client.post(
        "/api/v1/product-releases", {"product": str(release.product_id), "version": "2.0.0"}, format="json"
    )
    assert duplicate.status_code == 400


def test_downloaded_release_cannot_be_deleted(staff):
    download = f.AssetDownloadFactory()
    response = client_as(staff).delete(f"/api/v1/product-releases/{download.release_id}")
    assert response.status_code == 409
    assert ProductRelease.objects.filter(pk=download.release_id).exists()


# --- reviews ---------------------------------------------------------------------------------


def _rating(product) -> tuple[Decimal, int]:
    product.refresh_from_db()
    return product.avg_rating, product.review_count


def test_review_lifecycle_keeps_the_rating_exact(member):
    product = f.ProductFactory()
    f.ProductReviewFactory(product=product, rating=5)
    f.ProductReviewFactory(product=product, rating=4)
    client = client_as(member)

    created = client.post(
        "/api/v1/my-product-reviews", {"product": str(product.pk), "rating": 4, "title": "Good"}, format="json"
    )
    assert created.status_code == 201, created.content
    review_id = created.json()["id"]
    assert ProductReview.objects.get(pk=review_id).user == member
    assert _rating(product) == (Decimal("4.33"), 3)  # (5 + 4 + 4) / 3

    assert client.patch(f"/api/v1/my-product-reviews/{review_id}", {"rating": 1}, format="json").status_code == 200
    assert _rating(product) == (Decimal("3.33"), 3)  # (5 + 4 + 1) / 3

    assert client.delete(f"/api/v1/my-product-reviews/{review_id}").status_code == 204
    assert _rating(product) == (Decimal("4.50"), 2)


def test_rating_rounds_half_up_from_the_exact_average(member):
    product = f.ProductFactory()
    for rating in (5, 5, 4, 4, 4, 4, 3):
        f.ProductReviewFactory(product=product, rating=rating)
    response = client_as(member).post(
        "/api/v1/my-product-reviews", {"product": str(product.pk), "rating": 4}, format="json"
    )
    assert response.status_code == 201
    assert _rating(product) == (Decimal("4.13"), 8)  # 33 / 8 = 4.125


def test_one_review_per_user_and_product(member):
    product = f.ProductFactory()
    client = client_as(member)
    assert (
        client.post("/api/v1/my-product-reviews", {"product": str(product.pk), "rating": 5}, format="json").status_code
        == 201
    )
    again = client.post("/api/v1/my-product-reviews", {"product": str(product.pk), "rating": 3}, format="json")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "review_exists"
    assert _rating(product) == (Decimal("5.00"), 1)


@pytest.mark.parametrize("rating", [0, 6, "five"])
def test_rating_out_of_range_is_400(member, rating):
    product = f.ProductFactory()
    response = client_as(member).post(
        "/api/v1/my-product-reviews", {"product": str(product.pk), "rating": rating}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert "rating" in response.json()["error"]["details"]


def test_draft_products_cannot_be_reviewed(member):
    draft = f.ProductFactory(status=Product.Status.DRAFT)
    response = client_as(member).post(
        "/api/v1/my-product-reviews", {"product": str(draft.pk), "rating": 5}, format="json"
    )
    assert response.status_code == 400
    assert not ProductReview.objects.exists()


def test_everyone_reads_all_reviews_but_writes_only_their_own(member):
    product = f.ProductFactory()
    theirs = f.ProductReviewFactory(product=product, rating=2)
    f.ProductReviewFactory(product=f.ProductFactory(status=Product.Status.DRAFT))  # not public
    client = client_as(member)

    listed = client.get(f"/api/v1/product-reviews?product={product.pk}")
    assert _ids(listed) == {str(theirs.pk)}
    row = listed.json()["results"][0]
    assert "user" not in row and row["reviewer_name"].startswith(theirs.user.first_name)

    assert client.patch(f"/api/v1/my-product-reviews/{theirs.pk}", {"rating": 5}, format="json").status_code == 404
    assert client.delete(f"/api/v1/my-product-reviews/{theirs.pk}").status_code == 404
    assert client.delete(f"/api/v1/product-reviews/{theirs.pk}").status_code == 403
    assert ProductReview.objects.get(pk=theirs.pk).rating == 2


def test_a_review_cannot_move_to_another_product(member):
    review = f.ProductReviewFactory(user=member)
    other = f.ProductFactory()
    response = client_as(member).patch(
        f"/api/v1/my-product-reviews/{review.pk}", {"product": str(other.pk)}, format="json"
    )
    assert response.status_code == 400


def test_staff_moderation_recomputes_the_rating(staff):
    product = f.ProductFactory()
    f.ProductReviewFactory(product=product, rating=5)
    spam = f.ProductReviewFactory(product=product, rating=1)
    product.avg_rating, product.review_count = Decimal("3.00"), 2
    product.save()
    assert client_as(staff).delete(f"/api/v1/product-reviews/{spam.pk}").status_code == 204
    assert _rating(product) == (Decimal("5.00"), 1)


def test_review_is_verified_when_the_organization_owns_the_product(member):
    product = f.ProductFactory()
    f.CustomerAssetFactory(organization=member.organization, product=product)
    response = client_as(member).post(
        "/api/v1/my-product-reviews", {"product": str(product.pk), "rating": 5}, format="json"
    )
    assert response.status_code == 201
    assert response.json()["is_verified"] is True


# --- assets ----------------------------------------------------------------------------------


def test_assets_filter_by_product_and_status(member):
    org = member.organization
    active = f.CustomerAssetFactory(organization=org, user=member)
    expired = f.CustomerAssetFactory(organization=org, user=member, status="expired")
    client = client_as(member)
    assert _ids(client.get("/api/v1/assets?status=active")) == {str(active.pk)}
    assert _ids(client.get(f"/api/v1/assets?product={expired.product_id}")) == {str(expired.pk)}
    assert client.get("/api/v1/assets?product=not-a-uuid").status_code == 400


def test_asset_downloads_are_cursor_paged_newest_first(member):
    asset = f.CustomerAssetFactory(organization=member.organization, user=member)
    downloads = [f.AssetDownloadFactory(asset=asset, user=member) for _ in range(3)]
    response = client_as(member).get("/api/v1/asset-downloads?page_size=2")
    assert response.status_code == 200
    body = response.json()
    assert "count" not in body and body["next"]
    newest_first = sorted(downloads, key=lambda d: (d.created_at, d.id), reverse=True)
    assert [row["id"] for row in body["results"]] == [str(d.pk) for d in newest_first[:2]]
    assert body["results"][0]["release_version"] == newest_first[0].release.version
