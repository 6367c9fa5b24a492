"""Billing endpoints: gateway and tax catalogue, coupons, payment methods, orders and invoices.

Authentication, tenant isolation, roles and scopes are covered for every endpoint by
tests/test_api_contract.py; these tests are about each endpoint's own behaviour.
"""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing.models import Coupon, Order, PaymentGateway, PaymentMethod
from identity.models import User
from tests import factories as f
from tests.clients import client_as

pytestmark = pytest.mark.django_db


def _ids(response) -> set[str]:
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


# --- gateways, tax rates, coupons ------------------------------------------------------------


def test_customers_see_active_gateways_and_nobody_sees_config(owner, staff):
    active = f.PaymentGatewayFactory(code="stripe", provider="stripe", config={"account": "acct_123"})
    f.PaymentGatewayFactory(code="old", status=PaymentGateway.Status.INACTIVE)
    f.PaymentGatewayFactory(code="sandbox", status=PaymentGateway.Status.TEST)

    response = client_as(owner).get("/api/v1/payment-gateways")
    assert _ids(response) == {str(active.pk)}
    assert "config" not in response.json()["results"][0]
    assert "config" not in client_as(owner).get(f"/api/v1/payment-gateways/{active.pk}").json()

    staff_rows = client_as(staff).get("/api/v1/payment-gateways").json()["results"]
    assert len(staff_rows) == 3 and all("config" not in row for row in staff_rows)


def test_staff_cannot_set_gateway_config_through_the_api(staff):
    response = client_as(staff).post(
        "/api/v1/payment-gateways",
        {"name": "Stripe", "code": "stripe", "provider": "stripe", "fee_percentage": "2.9", "config": {"x": 1}},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert PaymentGateway.objects.get(code="stripe").config == {}


def test_gateway_fee_out_of_range_is_400(staff):
    response = client_as(staff).post(
        "/api/v1/payment-gateways",
        {"name": "X", "code": "x", "provider": "manual", "fee_percentage": "150"},
        format="json",
    )
    assert response.status_code == 400 and "fee_percentage" in response.json()["error"]["details"]


def test_gateway_with_orders_cannot_be_deleted(staff):
    order = f.OrderFactory()
    response = client_as(staff).delete(f"/api/v1/payment-gateways/{order.gateway_id}")
    assert response.status_code == 409 and response.json()["error"]["code"] == "gateway_in_use"


def test_customers_see_active_tax_rates(owner, staff):
    active = f.TaxRateFactory()
    f.TaxRateFactory(is_active=False)
    assert _ids(client_as(owner).get("/api/v1/tax-rates")) == {str(active.pk)}
    response = client_as(staff).post(
        "/api/v1/tax-rates", {"name": "IVA", "code": "iva-mx", "rate": "16", "country_code": "mx"}, format="json"
    )
    assert response.status_code == 201 and response.json()["country_code"] == "MX"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"discount_type": "percentage", "discount_value": "120"}, "discount_value"),
        ({"discount_value": "-5"}, "discount_value"),
        ({"valid_until": "2020-01-01T00:00:00Z"}, "valid_until"),
    ],
)
def test_invalid_coupons_are_400(staff, changes, field):
    payload = {
        "code": "SPRING",
        "discount_type": "fixed",
        "discount_value": "10",
        "valid_from": "2026-03-01T00:00:00Z",
        **changes,
    }
    response = client_as(staff).post("/api/v1/coupons", payload, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["details"]
    assert not Coupon.objects.exists()


def test_coupon_update_is_checked_against_the_stored_dates(staff):
    coupon = f.CouponFactory()
    client = client_as(staff)
    before_start = (coupon.valid_from - timedelta(days=1)).isoformat()
    response = client.patch(f"/api/v1/coupons/{coupon.pk}", {"valid_until": before_start}, format="json")
    assert response.status_code == 400 and "valid_until" in response.json()["error"]["details"]
    response = client.patch(f"/api/v1/coupons/{coupon.pk}", {"is_active": False, "times_redeemed": 99}, format="json")
    assert response.status_code == 200
    coupon.refresh_from_db()
    assert coupon.is_active is False and coupon.times_redeemed == 0  # read-only


def test_used_coupon_cannot_be_deleted(staff):
    coupon = f.CouponFactory()
    f.OrderFactory(coupon=coupon)
    response = client_as(staff).delete(f"/api/v1/coupons/{coupon.pk}")
    assert response.status_code == 409 and response.json()["error"]["code"] == "coupon_in_use"


# --- payment methods -------------------------------------------------------------------------


def test_set_default_leaves_exactly_one_default(owner):
    org = owner.organization
    first = f.PaymentMethodFactory(user=owner, is_default=True)
    second = f.PaymentMethodFactory(user=owner)
    colleague = f.UserFactory(organization=org, role=User.Role.OWNER)
    third = f.PaymentMethodFactory(user=colleague, is_default=True)
    elsewhere = f.PaymentMethodFactory(is_default=True)

    response = client_as(owner).post(f"/api/v1/payment-methods/{second.pk}/set-default")
    assert response.status_code == 200, response.content
    assert response.json()["is_default"] is True

    defaults = PaymentMethod.objects.filter(organization=org, is_default=True)
    assert list(defaults.values_list("pk", flat=True)) == [second.pk]
    first.refresh_from_db()
    third.refresh_from_db()
    assert not first.is_default and not third.is_default
    elsewhere.refresh_from_db()
    assert elsewhere.is_default  # another organization's default is untouched

    again = client_as(owner).post(f"/api/v1/payment-methods/{second.pk}/set-default")
    assert again.status_code == 200
    assert PaymentMethod.objects.filter(organization=org, is_default=True).count() == 1


def test_payment_methods_are_read_by_managers_and_changed_by_owners(owner):
    method = f.PaymentMethodFactory(user=owner)
    admin = f.UserFactory(organization=owner.organization, role=User.Role.ADMIN)
    member = f.UserFactory(organization=owner.organization, role=User.Role.MEMBER)

    listed = client_as(admin).get("/api/v1/payment-methods")
    assert _ids(listed) == {str(method.pk)}
    assert "gateway_token" not in listed.json()["results"][0]
    assert client_as(admin).post(f"/api/v1/payment-methods/{method.pk}/set-default").status_code == 403
    assert client_as(admin).delete(f"/api/v1/payment-methods/{method.pk}").status_code == 403
    assert client_as(member).get("/api/v1/payment-methods").status_code == 403

    assert client_as(owner).delete(f"/api/v1/payment-methods/{method.pk}").status_code == 204
    assert not PaymentMethod.objects.filter(pk=method.pk).exists()


def test_payment_methods_cannot_be_posted(owner):
    response = client_as(owner).post("/api/v1/payment-methods", {"type": "card"}, format="json")
    assert response.status_code == 405


# --- orders and invoices ---------------------------------------------------------------------


def test_orders_show_their_items_to_every_member(owner):
    viewer = f.UserFactory(organization=owner.organization, role=User.Role.VIEWER)
    order = f.OrderFactory(organization=owner.organization, user=owner, coupon=f.CouponFactory(code="WELCOME"))
    item = f.OrderItemFactory(order=order, quantity=2, unit_price=Decimal("10.00"), total=Decimal("20.00"))

    response = client_as(viewer).get(f"/api/v1/orders/{order.pk}")
    assert response.status_code == 200
    body = response.json()
    assert body["coupon_code"] == "WELCOME" and body["gateway"] == order.gateway.code
    assert body["items"] == [
        {
            "id": str(item.pk),
            "product": str(item.product_id),
            "product_name": item.product.name,
            "description": "",
            "quantity": 2,
            "unit_price": "10.0000",
            "total": "20.0000",
        }
    ]
    assert "idempotency_key" not in body and "gateway_reference" not in body


def test_orders_filter_by_status_and_creation_time(owner):
    org = owner.organization
    now = timezone.now()
    old = f.OrderFactory(organization=org, user=owner, created_at=now - timedelta(days=40))
    paid = f.OrderFactory(organization=org, user=owner, status=Order.Status.PAID, created_at=now - timedelta(days=1))
    pending = f.OrderFactory(organization=org, user=owner, created_at=now)
    client = client_as(owner)

    assert _ids(client.get("/api/v1/orders?status=paid")) == {str(paid.pk)}
    assert _ids(client.get("/api/v1/orders?status=paid&status=pending")) == {str(paid.pk), str(pending.pk), str(old.pk)}
    since = (now - timedelta(days=7)).isoformat().replace("+00:00", "Z")
    assert _ids(client.get("/api/v1/orders", {"created_at_after": since})) == {str(paid.pk), str(pending.pk)}
    rows = client.get("/api/v1/orders").json()["results"]
    assert [row["id"] for row in rows] == [str(pending.pk), str(paid.pk), str(old.pk)]  # newest first
    assert client.get("/api/v1/orders?status=bogus").status_code == 400


def test_orders_list_runs_a_constant_number_of_queries(owner):
    def queries_for(count: int) -> int:
        Order.objects.filter(organization=owner.organization).delete()
        for _ in range(count):
            order = f.OrderFactory(organization=owner.organization, user=owner, coupon=f.CouponFactory())
            f.OrderItemFactory.create_batch(2, order=order)
        client = client_as(owner)
        with CaptureQueriesContext(connection) as captured:
            response = client.get("/api/v1/orders?page_size=100")
        assert response.status_code == 200
        rows = response.json()["results"]
        assert len(rows) == count and all(len(row["items"]) == 2 for row in rows)
        return len(captured)

    assert queries_for(5) == queries_for(50)


def test_invoices_filter_by_status(owner):
    org = owner.organization
    issued = f.InvoiceFactory(order=f.OrderFactory(organization=org, user=owner))
    void = f.InvoiceFactory(order=f.OrderFactory(organization=org, user=owner), status="void")
    client = client_as(owner)
    assert _ids(client.get("/api/v1/invoices?status=issued")) == {str(issued.pk)}
    row = client.get(f"/api/v1/invoices/{void.pk}").json()
    assert row["status"] == "void" and row["order_number"] == void.order.order_number
