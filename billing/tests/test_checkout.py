"""Checkout: exact server-side pricing, coupons (with concurrent redemptions), taxes of the
organization's country, human order numbers and the Idempotency-Key contract."""

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from billing.models import Coupon, Order, PaymentGateway
from billing.pricing import amount_in_minor_units, gateway_fee_compute, order_amounts_compute
from billing.services.checkout import order_checkout
from billing.services.payments import order_mark_paid
from celaest.errors import Conflict, InvalidInput
from identity.models import User
from settings_app.models import WebhookDelivery
from tests import factories as f
from tests.clients import client_as

D = Decimal

# (line totals, currency, discount type, discount value, tax %) -> (subtotal, discount, tax, total)
PRICING_CASES = [
    ([D("99.00")], "USD", None, D("0"), D("0"), ("99.00", "0.00", "0.00", "99.00")),
    ([D("59.97")], "EUR", "percentage", D("10"), D("21"), ("59.97", "6.00", "11.33", "65.30")),
    ([D("5.00")], "USD", "fixed", D("5.00"), D("21"), ("5.00", "5.00", "0.00", "0.00")),
    ([D("4.99")], "USD", "fixed", D("10.00"), D("21"), ("4.99", "4.99", "0.00", "0.00")),  # never below zero
    ([D("0.125")], "USD", None, D("0"), D("0"), ("0.13", "0.00", "0.00", "0.13")),  # half up, not to even
    ([D("10.50")], "USD", None, D("0"), D("5"), ("10.50", "0.00", "0.53", "11.03")),  # tax 0.525
    ([D("33.33")], "EUR", "percentage", D("15"), D("19"), ("33.33", "5.00", "5.38", "33.71")),
    ([D("0.0049"), D("0.0001")], "USD", None, D("0"), D("0"), ("0.01", "0.00", "0.00", "0.01")),  # once per doc
    ([D("3000")], "JPY", "percentage", D("15"), D("8"), ("3000", "450", "204", "2754")),
    ([D("105")], "JPY", None, D("0"), D("10"), ("105", "0", "11", "116")),  # 10.5 yen of tax
    ([D("1.2345")], "BHD", None, D("0"), D("10"), ("1.235", "0.000", "0.124", "1.359")),
    ([D("80.00"), D("20.00")], "USD", "percentage", D("100"), D("21"), ("100.00", "100.00", "0.00", "0.00")),
    ([D("19.99")] * 3, "USD", "fixed", D("0.01"), D("7.25"), ("59.97", "0.01", "4.35", "64.31")),
]


@pytest.mark.parametrize(("lines", "currency", "kind", "value", "tax", "expected"), PRICING_CASES)
def test_exact_totals(lines, currency, kind, value, tax, expected):
    amounts = order_amounts_compute(
        line_totals=lines, currency=currency, discount_type=kind, discount_value=value, tax_percent=tax
    )
    got = (amounts.subtotal, amounts.discount, amounts.tax, amounts.total)
    assert tuple(str(x) for x in got) == expected
    assert amounts.total == amounts.subtotal - amounts.discount + amounts.tax


def test_gateway_fee_and_minor_units():
    gateway = PaymentGateway(fee_percentage=D("2.90"), fee_fixed=D("0.30"))
    assert gateway_fee_compute(gateway=gateway, total=D("65.30"), currency="USD") == D("2.19")  # 1.8937 + 0.30
    assert gateway_fee_compute(gateway=gateway, total=D("0"), currency="USD") == D("0")
    assert amount_in_minor_units(D("65.30"), "USD") == 6530
    assert amount_in_minor_units(D("2754"), "JPY") == 2754


# --- the checkout service and endpoint -------------------------------------------------------


@pytest.fixture
def organization():
    return f.OrganizationFactory(settings={"currency": "EUR", "country": "ES"})


@pytest.fixture
def owner(organization):
    return f.UserFactory(organization=organization, role=User.Role.OWNER)


@pytest.fixture
def manual():
    return f.PaymentGatewayFactory(code="manual", fee_percentage=D("0"))


@pytest.fixture
def product():
    return f.ProductFactory(price=D("19.99"), currency="EUR")


def _order_body(product, *, quantity=3, coupon="", gateway="manual"):
    return {"items": [{"product": str(product.pk), "quantity": quantity}], "coupon_code": coupon, "gateway": gateway}


@pytest.mark.django_db
def test_checkout_prices_on_the_server(owner, manual, product):
    f.TaxRateFactory(country_code="ES", rate=D("21.000"), code="es-vat")
    f.TaxRateFactory(country_code="FR", rate=D("20.000"), code="fr-vat")
    f.CouponFactory(code="TEN", discount_value=D("10"))
    response = client_as(owner).post("/api/v1/orders", _order_body(product, coupon="TEN"), format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert [D(body[k]) for k in ("subtotal", "discount_total", "tax_total", "total")] == [
        D("59.97"),
        D("6.00"),
        D("11.33"),
        D("65.30"),
    ]
    assert D(body["tax_rate_percent"]) == D("21") and body["currency"] == "EUR" and body["status"] == "pending"
    assert body["items"][0]["quantity"] == 3 and D(body["items"][0]["unit_price"]) == D("19.99")
    assert body["payment"]["instructions"]["reference"] == body["order_number"]
    year = timezone.now().year
    assert body["order_number"] == f"ORD-{year}-000001"
    assert Coupon.objects.get(code="TEN").times_redeemed == 1


@pytest.mark.django_db
def test_prices_in_the_body_are_ignored_and_numbers_are_sequential(owner, manual, product):
    client = client_as(owner)
    body = _order_body(product, quantity=1)
    body["items"][0]["unit_price"] = "0.01"
    body["total"] = "0.01"
    first = client.post("/api/v1/orders", body, format="json").json()
    second = client.post("/api/v1/orders", body, format="json").json()
    assert D(first["total"]) == D("19.99")  # no tax rate for ES in this test
    assert int(second["order_number"][-6:]) == int(first["order_number"][-6:]) + 1


@pytest.mark.django_db
def test_regional_tax_rate_wins_over_the_national_one(manual, product):
    organization = f.OrganizationFactory(settings={"country": "es", "region": "CN"})
    f.TaxRateFactory(country_code="ES", rate=D("21.000"), code="es-vat")
    f.TaxRateFactory(country_code="ES", region="CN", rate=D("7.000"), code="es-igic")
    user = f.UserFactory(organization=organization, role=User.Role.OWNER)
    order, _ = order_checkout(user=user, items=[(product, 1)], gateway_code="manual")
    assert order.tax_rate_percent == D("7.000") and order.tax_total == D("1.40")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("coupon_kwargs", "code"),
    [
        ({"is_active": False}, "coupon_invalid"),
        ({"valid_from": timezone.now() + timedelta(days=1), "valid_until": None}, "coupon_expired"),
        (
            {"valid_from": timezone.now() - timedelta(days=9), "valid_until": timezone.now() - timedelta(days=1)},
            "coupon_expired",
        ),
        ({"discount_type": "fixed", "discount_value": D("5"), "currency": "USD"}, "coupon_currency"),
    ],
)
def test_unusable_coupons_are_refused_and_not_redeemed(owner, manual, product, coupon_kwargs, code):
    coupon = f.CouponFactory(code="C1", **coupon_kwargs)
    response = client_as(owner).post("/api/v1/orders", _order_body(product, coupon="C1"), format="json")
    assert response.status_code == 400 and response.json()["error"]["code"] == code
    coupon.refresh_from_db()
    assert coupon.times_redeemed == 0 and not Order.objects.exists()


@pytest.mark.django_db
def test_bad_requests_are_400_not_500(owner, manual, product):
    client = client_as(owner)
    draft = f.ProductFactory(status="draft", currency="EUR")
    usd = f.ProductFactory(currency="USD")
    cases = [
        {"items": [], "gateway": "manual"},
        {"items": [{"product": "not-a-uuid"}], "gateway": "manual"},
        _order_body(product, quantity=0),
        _order_body(product, quantity=101),
        _order_body(product, gateway="nope"),
        _order_body(draft),
        {"items": [{"product": str(product.pk)}, {"product": str(usd.pk)}], "gateway": "manual"},
        _order_body(product, coupon="MISSING"),
    ]
    for body in cases:
        response = client.post("/api/v1/orders", body, format="json")
        assert response.status_code == 400, (body, response.content)
    assert not Order.objects.exists()


@pytest.mark.django_db
def test_fully_discounted_order_is_paid_at_once(owner, manual, product):
    f.CouponFactory(code="FREE", discount_value=D("100"))
    body = client_as(owner).post("/api/v1/orders", _order_body(product, coupon="FREE"), format="json").json()
    assert body["status"] == "paid" and D(body["total"]) == 0 and body["payment"] is None
    assert Order.objects.get(pk=body["id"]).invoices.count() == 1


@pytest.mark.django_db
def test_checkout_emits_order_created_and_is_audited(owner, manual, product):
    f.WebhookFactory(organization=owner.organization, user=owner, events=["order.created"])
    order, _ = order_checkout(user=owner, items=[(product, 1)], gateway_code="manual")
    delivery = WebhookDelivery.objects.get(event_type="order.created")
    assert delivery.payload["data"]["order_number"] == order.order_number
    from audit.models import AuditLog

    assert AuditLog.objects.filter(resource_id=str(order.pk), action="create").exists()


# --- Idempotency-Key -------------------------------------------------------------------------


@pytest.mark.django_db
def test_same_key_and_body_returns_the_same_order(owner, manual, product):
    client = client_as(owner)
    first = client.post("/api/v1/orders", _order_body(product), format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    again = client.post("/api/v1/orders", _order_body(product), format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == 201 and again.status_code == 200
    assert first.json()["id"] == again.json()["id"] and Order.objects.count() == 1


@pytest.mark.django_db
def test_same_key_with_another_body_is_409(owner, manual, product):
    client = client_as(owner)
    client.post("/api/v1/orders", _order_body(product), format="json", HTTP_IDEMPOTENCY_KEY="k-2")
    other = client.post("/api/v1/orders", _order_body(product, quantity=2), format="json", HTTP_IDEMPOTENCY_KEY="k-2")
    assert other.status_code == 409 and other.json()["error"]["code"] == "idempotency_key_reused"
    assert Order.objects.count() == 1


@pytest.mark.django_db
def test_keys_are_per_user_and_absent_keys_never_match(owner, manual, product, organization):
    colleague = f.UserFactory(organization=organization, role=User.Role.ADMIN)
    client_as(owner).post("/api/v1/orders", _order_body(product), format="json", HTTP_IDEMPOTENCY_KEY="shared")
    response = client_as(colleague).post(
        "/api/v1/orders", _order_body(product), format="json", HTTP_IDEMPOTENCY_KEY="shared"
    )
    assert response.status_code == 201
    client_as(owner).post("/api/v1/orders", _order_body(product), format="json")
    client_as(owner).post("/api/v1/orders", _order_body(product), format="json")
    assert Order.objects.count() == 4


@pytest.mark.django_db
def test_members_and_viewers_cannot_place_orders(organization, manual, product):
    for role in (User.Role.MEMBER, User.Role.VIEWER):
        user = f.UserFactory(organization=organization, role=role)
        assert client_as(user).post("/api/v1/orders", _order_body(product), format="json").status_code == 403


@pytest.mark.django_db
def test_customer_cancels_a_pending_order_and_gets_the_coupon_back(owner, manual, product):
    f.CouponFactory(code="ONCE", max_redemptions=1)
    client = client_as(owner)
    order = client.post("/api/v1/orders", _order_body(product, coupon="ONCE"), format="json").json()
    assert client.post("/api/v1/orders", _order_body(product, coupon="ONCE"), format="json").status_code == 409
    response = client.post(f"/api/v1/orders/{order['id']}/cancel", {"reason": "changed my mind"}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert Coupon.objects.get(code="ONCE").times_redeemed == 0
    again = client.post(f"/api/v1/orders/{order['id']}/cancel", {}, format="json")  # idempotent
    assert again.status_code == 200 and again.json()["status"] == "cancelled"
    paid, _ = order_checkout(user=owner, items=[(product, 1)], gateway_code="manual")
    order_mark_paid(order=paid)
    refused = client.post(f"/api/v1/orders/{paid.pk}/cancel", {}, format="json")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "order_not_cancellable"
    other = f.UserFactory(role=User.Role.OWNER)
    assert client_as(other).post(f"/api/v1/orders/{order['id']}/cancel", {}, format="json").status_code == 404


# --- concurrency -----------------------------------------------------------------------------


def _in_thread(fn):
    def run(*args):
        try:
            return fn(*args)
        finally:
            connection.close()

    return run


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_redemptions_of_a_max_five_coupon_succeed_five_times():
    organization = f.OrganizationFactory(settings={"country": "US"})
    users = [f.UserFactory(organization=organization, role=User.Role.OWNER) for _ in range(20)]
    f.PaymentGatewayFactory(code="manual")
    product = f.ProductFactory(price=D("10.00"))
    f.CouponFactory(code="FIVE", max_redemptions=5)

    @_in_thread
    def checkout(user):
        try:
            order_checkout(user=user, items=[(product, 1)], gateway_code="manual", coupon_code="FIVE")
            return "ok"
        except Conflict as exc:
            return exc.code
        except InvalidInput as exc:
            return exc.code

    with ThreadPoolExecutor(max_workers=20) as pool:
        outcomes = list(pool.map(checkout, users))
    assert outcomes.count("ok") == 5, outcomes
    assert outcomes.count("coupon_exhausted") == 15
    assert Coupon.objects.get(code="FIVE").times_redeemed == 5
    orders = Order.objects.all()
    assert orders.count() == 5 and all(order.discount_total == D("1.00") for order in orders)
    assert len({order.order_number for order in orders}) == 5


@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_with_one_key_make_one_order():
    organization = f.OrganizationFactory()
    user = f.UserFactory(organization=organization, role=User.Role.OWNER)
    f.PaymentGatewayFactory(code="manual")
    product = f.ProductFactory()

    @_in_thread
    def checkout(_):
        order, created = order_checkout(
            user=user, items=[(product, 1)], gateway_code="manual", idempotency_key="retry-me"
        )
        return order.pk, created

    with ThreadPoolExecutor(max_workers=10) as pool:
        outcomes = list(pool.map(checkout, range(10)))
    assert len({pk for pk, _ in outcomes}) == 1
    assert [created for _, created in outcomes].count(True) == 1
    assert Order.objects.count() == 1


@pytest.mark.django_db
def test_stale_pending_orders_are_cancelled_and_give_their_coupon_back(owner, manual, product):
    from billing.tasks import cancel_stale_orders

    f.CouponFactory(code="HELD", max_redemptions=1)
    stale, _ = order_checkout(user=owner, items=[(product, 1)], gateway_code="manual", coupon_code="HELD")
    fresh, _ = order_checkout(user=owner, items=[(product, 1)], gateway_code="manual")
    paid, _ = order_checkout(user=owner, items=[(product, 1)], gateway_code="manual")
    order_mark_paid(order=paid)
    Order.objects.filter(pk__in=[stale.pk, paid.pk]).update(created_at=timezone.now() - timedelta(days=10))
    assert cancel_stale_orders() == 1
    statuses = dict(Order.objects.values_list("pk", "status"))
    assert (statuses[stale.pk], statuses[fresh.pk], statuses[paid.pk]) == ("cancelled", "pending", "paid")
    assert Coupon.objects.get(code="HELD").times_redeemed == 0
