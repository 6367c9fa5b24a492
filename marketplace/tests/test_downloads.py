"""Signed, expiring download links: only the asset's owner gets one; the link is a bearer token
that anyone holding it may follow (signed in or not, of any organization), following it is logged
and counted, and expired, tampered or moved links are refused."""

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from identity.models import User
from marketplace import services
from marketplace.models import AssetDownload, CustomerAsset, Product, ProductRelease
from settings_app.services.api_keys import api_key_create
from tests import factories as f
from tests.clients import client_as

FILE_URL = "https://downloads.example.com/desk-1.10.0.zip"


@pytest.fixture
def asset(owner):
    product = f.ProductFactory()
    f.ProductReleaseFactory(product=product, version="1.9.0", download_url="https://downloads.example.com/old.zip")
    f.ProductReleaseFactory(product=product, version="1.10.0", download_url=FILE_URL)
    return f.CustomerAssetFactory(organization=owner.organization, user=owner, product=product)


def _link(client, asset, **body):
    return client.post(f"/api/v1/assets/{asset.pk}/download", body, format="json")


@pytest.mark.django_db
def test_owner_gets_a_link_and_following_it_logs_and_counts(owner, asset):
    response = _link(client_as(owner), asset)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["release"]["version"] == "1.10.0" and "download_url" not in body["release"]
    followed = APIClient().get(body["url"], HTTP_USER_AGENT="curl/8", REMOTE_ADDR="198.51.100.9")
    assert followed.status_code == 302 and followed["Location"] == FILE_URL
    download = AssetDownload.objects.get()
    assert (download.user_id, download.ip_address, download.user_agent) == (owner.pk, "198.51.100.9", "curl/8")
    assert download.release.version == "1.10.0"
    assert Product.objects.get(pk=asset.product_id).download_count == 1
    assert client_as(owner).get(body["url"]).status_code == 302  # the owner signed in may follow it too
    assert Product.objects.get(pk=asset.product_id).download_count == 2


@pytest.mark.django_db
def test_a_chosen_release_must_be_a_published_one_of_the_product(owner, asset):
    client = client_as(owner)
    old = ProductRelease.objects.get(product=asset.product, version="1.9.0")
    assert _link(client, asset, release=str(old.pk)).json()["release"]["version"] == "1.9.0"
    yanked = f.ProductReleaseFactory(product=asset.product, version="1.11.0", status="yanked")
    other = f.ProductReleaseFactory(version="9.0.0")
    for release in (yanked, other):
        assert _link(client, asset, release=str(release.pk)).status_code == 404


@pytest.mark.django_db
def test_only_the_owner_of_a_live_asset_gets_a_link(owner, asset):
    colleague = f.UserFactory(organization=owner.organization, role=User.Role.ADMIN)
    response = _link(client_as(colleague), asset)
    assert response.status_code == 403 and response.json()["error"]["code"] == "not_asset_owner"
    stranger = f.UserFactory(role=User.Role.OWNER)
    assert _link(client_as(stranger), asset).status_code == 404
    assert _link(client_as(), asset).status_code == 401

    CustomerAsset.objects.filter(pk=asset.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    assert _link(client_as(owner), asset).json()["error"]["code"] == "asset_expired"
    CustomerAsset.objects.filter(pk=asset.pk).update(expires_at=None, status="revoked")
    assert _link(client_as(owner), asset).json()["error"]["code"] == "asset_inactive"


@pytest.mark.django_db
def test_no_published_release_is_404(owner):
    product = f.ProductFactory()
    f.ProductReleaseFactory(product=product, status="draft", checksum_sha256="")
    asset = f.CustomerAssetFactory(organization=owner.organization, user=owner, product=product)
    assert _link(client_as(owner), asset).json()["error"]["code"] == "no_release"


@pytest.mark.django_db
def test_expired_links_are_refused(owner, asset, settings):
    url = _link(client_as(owner), asset).json()["url"]
    settings.ASSET_DOWNLOAD_LINK_SECONDS = -1  # every link is now older than its lifetime
    response = APIClient().get(url)
    assert response.status_code == 403 and response.json()["error"]["code"] == "download_link_expired"
    assert not AssetDownload.objects.exists()


@pytest.mark.django_db
def test_tampered_and_foreign_links_are_refused(owner, asset):
    url = _link(client_as(owner), asset).json()["url"]
    prefix, token = url.rsplit("/", 1)
    tampered = prefix + "/" + token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert APIClient().get(tampered).json()["error"]["code"] == "download_link_invalid"

    other_asset = f.CustomerAssetFactory(organization=owner.organization, user=owner, product=asset.product)
    moved = url.replace(str(asset.pk), str(other_asset.pk))
    assert APIClient().get(moved).status_code == 403
    assert not AssetDownload.objects.exists()


@pytest.mark.django_db
def test_a_link_is_a_bearer_token_whoever_follows_it(owner, asset):
    """An anonymous client, a colleague and a user of another organization get the same answer
    (it used to be 302 for the first and 403 for the others, who only had to sign out); each
    download is logged against the owner the link was issued to, from the follower's address."""
    url = _link(client_as(owner), asset).json()["url"]
    colleague = f.UserFactory(organization=owner.organization, role=User.Role.ADMIN)
    stranger = f.UserFactory(role=User.Role.OWNER)
    followers = [
        (APIClient(), "198.51.100.1"),
        (client_as(colleague), "198.51.100.2"),
        (client_as(stranger), "198.51.100.3"),
    ]
    for client, address in followers:
        response = client.get(url, REMOTE_ADDR=address)
        assert (response.status_code, response["Location"]) == (302, FILE_URL)
    downloads = AssetDownload.objects.order_by("created_at")
    assert [(d.user_id, d.ip_address) for d in downloads] == [
        (owner.pk, "198.51.100.1"),
        (owner.pk, "198.51.100.2"),
        (owner.pk, "198.51.100.3"),
    ]
    assert Product.objects.get(pk=asset.product_id).download_count == 3


@pytest.mark.django_db
def test_credentials_sent_along_with_a_link_are_not_read(owner, asset):
    url = _link(client_as(owner), asset).json()["url"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer cel_not-a-key-of-ours")
    assert client.get(url).status_code == 302


@pytest.mark.django_db
def test_a_link_does_not_outlive_a_refund(owner, asset):
    url = _link(client_as(owner), asset).json()["url"]
    CustomerAsset.objects.filter(pk=asset.pk).update(status="revoked")
    assert APIClient().get(url).status_code == 409


@pytest.mark.django_db
def test_download_needs_the_assets_write_scope(owner, asset):
    for scopes, expected in ((["assets:read"], 403), (["assets:write"], 200)):
        issued = api_key_create(user=owner, name=f"k{expected}", scopes=scopes)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.raw_key}")
        assert _link(client, asset).status_code == expected


@pytest.mark.django_db(transaction=True)
def test_concurrent_downloads_are_all_counted():
    owner = f.UserFactory(role=User.Role.OWNER)
    product = f.ProductFactory()
    release = f.ProductReleaseFactory(product=product, download_url=FILE_URL)
    asset = f.CustomerAssetFactory(organization=owner.organization, user=owner, product=product)
    link = services.asset_download_link_create(asset=asset, user=owner)

    def follow(_):
        try:
            services.asset_download_follow(asset_id=asset.pk, token=link.token, ip_address="192.0.2.1")
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=10) as pool:
        list(pool.map(follow, range(20)))
    assert Product.objects.get(pk=product.pk).download_count == 20
    assert AssetDownload.objects.filter(release=release).count() == 20


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("/static/marketplace/demo-release.txt", 302),  # served by the platform (the demo's releases)
        ("//evil.example/x.zip", 404),  # a browser reads this as another host
        ("/\\evil.example/x.zip", 404),
        ("s3://bucket/desk.zip", 404),  # not a place a browser can be sent
    ],
)
def test_a_release_on_the_platform_itself_is_served_by_path(owner, location, expected):
    product = f.ProductFactory()
    f.ProductReleaseFactory(product=product, download_url=location)
    asset = f.CustomerAssetFactory(organization=owner.organization, user=owner, product=product)
    response = APIClient().get(_link(client_as(owner), asset).json()["url"])
    assert response.status_code == expected
    if expected == 302:
        assert response["Location"] == location
    else:
        assert response.json()["error"]["code"] == "artifact_missing"


@pytest.mark.django_db
def test_staff_may_set_a_platform_path_but_not_another_hosts_path_as_a_release_location():
    staff = f.UserFactory(is_staff=True, role=User.Role.OWNER)
    release = f.ProductReleaseFactory(download_url=FILE_URL)
    client = client_as(staff)
    url = f"/api/v1/product-releases/{release.pk}"
    assert client.patch(url, {"download_url": "/static/marketplace/demo-release.txt"}, format="json").status_code == 200
    for location in ("//evil.example/x.zip", "/\\evil.example/x.zip", "ftp://files.example/x.zip"):
        assert client.patch(url, {"download_url": location}, format="json").status_code == 400
