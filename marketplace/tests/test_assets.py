"""The assets an order grants and a refund takes back (``customer_assets_grant`` and
``customer_assets_revoke``, which billing calls): one per unit, for the product's term, and a
revocation that leaves assets of other orders and already revoked ones alone."""

from datetime import timedelta

import pytest
from django.utils import timezone

from marketplace.models import CustomerAsset
from marketplace.services import customer_assets_grant, customer_assets_revoke
from tests import factories as f

pytestmark = pytest.mark.django_db


def test_an_order_grants_one_asset_per_unit_for_the_products_term():
    order = f.OrderFactory()
    yearly = f.ProductFactory(asset_term_days=365)
    lifetime = f.ProductFactory(asset_term_days=None)
    license = f.LicenseFactory(organization=order.organization)
    now = timezone.now()

    assets = customer_assets_grant(order=order, grants=[(yearly, license), (yearly, None), (lifetime, None)], now=now)

    stored = CustomerAsset.objects.filter(order=order)
    assert len(assets) == stored.count() == 3
    assert {(a.product_id, a.license_id) for a in stored} == {
        (yearly.pk, license.pk),
        (yearly.pk, None),
        (lifetime.pk, None),
    }
    assert all(a.organization_id == order.organization_id and a.user_id == order.user_id for a in stored)
    assert all(a.granted_at == now and a.status == CustomerAsset.Status.ACTIVE for a in stored)
    assert {a.expires_at for a in stored.filter(product=yearly)} == {now + timedelta(days=365)}
    assert stored.get(product=lifetime).expires_at is None


def test_revoking_an_order_takes_back_only_its_live_assets():
    order = f.OrderFactory()
    product = f.ProductFactory()
    live, also_live = customer_assets_grant(order=order, grants=[(product, None), (product, None)], now=timezone.now())
    CustomerAsset.objects.filter(pk=also_live.pk).update(status=CustomerAsset.Status.REVOKED)
    other = f.CustomerAssetFactory(organization=order.organization, user=order.user, product=product)
    now = timezone.now()

    revoked = customer_assets_revoke(order=order, now=now)

    assert [asset.pk for asset in revoked] == [live.pk]
    live.refresh_from_db()
    assert live.status == CustomerAsset.Status.REVOKED and live.revoked_at == now
    other.refresh_from_db()
    assert other.status == CustomerAsset.Status.ACTIVE
    assert customer_assets_revoke(order=order, now=timezone.now()) == []
