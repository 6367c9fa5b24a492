"""Release precedence (semantic versioning) and the upgrade question installed software asks."""

import pytest
from rest_framework.test import APIClient

from celaest.errors import InvalidInput
from identity.models import User
from marketplace.models import Product, ProductRelease
from marketplace.selectors import product_release_latest
from marketplace.versions import version_parse, version_sort_key
from settings_app.services.api_keys import api_key_create
from tests import factories as f
from tests.clients import client_as

# Ascending precedence, from the semver.org specification's own example and then some.
ORDERED = [
    "0.9.0",
    "1.0.0-alpha",
    "1.0.0-alpha.1",
    "1.0.0-alpha.beta",
    "1.0.0-alpha-b",
    "1.0.0-beta",
    "1.0.0-beta.2",
    "1.0.0-beta.11",
    "1.0.0-rc.1",
    "1.0.0",
    "1.0.1",
    "1.2.0",
    "1.9.0",
    "1.10.0",
    "1.10.1-rc.1",
    "1.10.1",
    "2.0.0",
    "10.0.0",
]


def test_sort_keys_order_versions_by_semantic_precedence():
    keys = [version_sort_key(version_parse(v)) for v in ORDERED]
    assert keys == sorted(keys)
    assert len(set(keys)) == len(keys)


def test_build_metadata_does_not_change_precedence():
    assert version_sort_key(version_parse("1.0.0+build.7")) == version_sort_key(version_parse("1.0.0"))


@pytest.mark.parametrize(
    "text", ["", "1", "1.2", "01.2.3", "1.2.3-", "1.2.3-01", "v1.2.3", "1.2.3.4", "1" * 19 + ".0.0"]
)
def test_invalid_versions_are_refused(text):
    with pytest.raises(InvalidInput):
        version_parse(text)


@pytest.mark.django_db
def test_the_database_orders_releases_by_precedence():
    product = f.ProductFactory()
    for version in reversed(ORDERED):
        f.ProductReleaseFactory(product=product, version=version)
    stored = list(ProductRelease.objects.filter(product=product).order_by("version_sort_key"))
    assert [r.version for r in stored] == ORDERED
    release = stored[-1]
    assert (release.version_major, release.version_minor, release.version_patch) == (10, 0, 0)


@pytest.mark.django_db
def test_latest_skips_drafts_yanked_and_prereleases_unless_asked():
    product = f.ProductFactory()
    f.ProductReleaseFactory(product=product, version="1.9.0")
    f.ProductReleaseFactory(product=product, version="1.10.0")
    f.ProductReleaseFactory(product=product, version="1.11.0", status=ProductRelease.Status.YANKED)
    f.ProductReleaseFactory(product=product, version="1.12.0", status=ProductRelease.Status.DRAFT, checksum_sha256="")
    f.ProductReleaseFactory(product=product, version="2.0.0-rc.1")
    assert product_release_latest(product=product).version == "1.10.0"
    assert product_release_latest(product=product, include_prereleases=True).version == "2.0.0-rc.1"


@pytest.mark.django_db
def test_changing_the_version_re_derives_the_sort_key():
    release = f.ProductReleaseFactory(version="1.0.0")
    release.version = "1.10.0"
    release.save(update_fields=["version"])
    release.refresh_from_db()
    assert release.version_minor == 10
    assert release.version_sort_key == version_sort_key(version_parse("1.10.0"))


# --- the endpoint ----------------------------------------------------------------------------


@pytest.fixture
def member():
    return f.UserFactory(role=User.Role.VIEWER)


def _latest(client, slug, **params):
    return client.get(f"/api/v1/products/{slug}/releases/latest", params)


@pytest.mark.django_db
def test_upgrade_answers(member):
    product = f.ProductFactory(slug="desk")
    f.ProductReleaseFactory(product=product, version="1.2.0")
    newest = f.ProductReleaseFactory(product=product, version="1.10.0")
    f.ProductReleaseFactory(product=product, version="1.9.0")
    client = client_as(member)

    body = _latest(client, "desk", current="1.2.0").json()
    assert body["upgrade_available"] is True
    assert body["latest"]["id"] == str(newest.pk) and body["latest"]["version"] == "1.10.0"
    assert "download_url" not in body["latest"]

    assert _latest(client, "desk", current="1.10.0").json()["upgrade_available"] is False
    assert _latest(client, "desk", current="1.10.1-rc.1").json()["upgrade_available"] is False
    assert _latest(client, "desk", current="1.10.0-rc.3").json()["upgrade_available"] is True
    no_current = _latest(client, "desk").json()
    assert no_current["upgrade_available"] is True and no_current["current"] is None

    f.ProductReleaseFactory(product=product, version="2.0.0-beta.1")
    assert _latest(client, "desk", current="1.10.0").json()["upgrade_available"] is False
    answer = _latest(client, "desk", current="1.10.0", prerelease="true").json()
    assert answer["upgrade_available"] is True and answer["latest"]["version"] == "2.0.0-beta.1"


@pytest.mark.django_db
def test_no_release_means_no_upgrade(member):
    f.ProductFactory(slug="empty")
    body = _latest(client_as(member), "empty", current="1.0.0").json()
    assert body == {"product": "empty", "current": "1.0.0", "upgrade_available": False, "latest": None}


@pytest.mark.django_db
def test_bad_version_is_400_and_unknown_or_unpublished_product_404(member):
    f.ProductFactory(slug="desk")
    f.ProductFactory(slug="secret", status=Product.Status.DRAFT)
    client = client_as(member)
    response = _latest(client, "desk", current="1.2")
    assert response.status_code == 400 and "current" in response.json()["error"]["details"]
    assert _latest(client, "nope").status_code == 404
    assert _latest(client, "secret").status_code == 404
    assert _latest(client_as(f.StaffUserFactory()), "secret").status_code == 200


@pytest.mark.django_db
def test_latest_needs_authentication_and_a_products_scope(member):
    f.ProductFactory(slug="desk")
    assert APIClient().get("/api/v1/products/desk/releases/latest").status_code == 401
    for scopes, expected in ((["licenses:read"], 403), (["products:read"], 200)):
        issued = api_key_create(user=member, name=f"k{expected}", scopes=scopes)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.raw_key}")
        assert client.get("/api/v1/products/desk/releases/latest/").status_code == expected


@pytest.mark.django_db
def test_publishing_needs_a_checksum_through_the_api():
    staff = client_as(f.StaffUserFactory())
    product = f.ProductFactory()
    response = staff.post(
        "/api/v1/product-releases",
        {"product": str(product.pk), "version": "1.0.0", "status": "published"},
        format="json",
    )
    assert response.status_code == 400 and response.json()["error"]["code"] == "checksum_required"
    response = staff.post(
        "/api/v1/product-releases", {"product": str(product.pk), "version": "1.0", "status": "draft"}, format="json"
    )
    assert response.status_code == 400 and "version" in response.json()["error"]["details"]


@pytest.mark.django_db
def test_ordering_by_version_is_semantic(member):
    product = f.ProductFactory()
    for version in ("1.9.0", "1.10.0", "1.2.0", "2.0.0-rc.1"):
        f.ProductReleaseFactory(product=product, version=version)
    response = client_as(member).get("/api/v1/product-releases", {"product": str(product.pk), "ordering": "-version"})
    assert [row["version"] for row in response.json()["results"]] == ["2.0.0-rc.1", "1.10.0", "1.9.0", "1.2.0"]
