"""REST routes of the billing app under /api/v1/."""

from django.urls import re_path

from celaest.api.routers import ApiRouter

from .views import (
    CouponViewSet,
    CreditNoteViewSet,
    InvoiceViewSet,
    OrderViewSet,
    PaymentGatewayViewSet,
    PaymentMethodViewSet,
    StripeWebhookView,
    SubscriptionViewSet,
    TaxRateViewSet,
)

router = ApiRouter()
router.register("payment-gateways", PaymentGatewayViewSet, basename="payment-gateway")
router.register("tax-rates", TaxRateViewSet, basename="tax-rate")
router.register("coupons", CouponViewSet, basename="coupon")
router.register("payment-methods", PaymentMethodViewSet, basename="payment-method")
router.register("orders", OrderViewSet, basename="order")
router.register("invoices", InvoiceViewSet, basename="invoice")
router.register("subscriptions", SubscriptionViewSet, basename="subscription")
router.register("credit-notes", CreditNoteViewSet, basename="credit-note")

urlpatterns = [
    re_path(r"^billing/stripe/webhook/?$", StripeWebhookView.as_view(), name="stripe-webhook"),
    *router.urls,
]
