"""Payment gateways behind one interface: how an order's payment starts, how a reported payment
is verified with the gateway, and how a payment is refunded.

- ``manual``: bank transfer. The customer pays with the order number as reference; staff mark
  the order paid in the admin when the money arrives, and refund by hand. A subscription's
  invoice waits for a transfer until its due date.
- ``stripe``: Stripe PaymentIntents through the official SDK. The client confirms the intent
  with its ``client_secret``; Stripe's signed webhook reports the outcome, and the intent is
  fetched back from Stripe before an order is marked paid. A subscription's invoice is charged
  off-session to the organization's saved default method (its Stripe customer and method ids).

Secrets come from the environment (``STRIPE_API_KEY``, ``STRIPE_WEBHOOK_SECRET``), never from
the gateway row. ``STRIPE_API_BASE`` points the SDK at another server (tests use a local one).
"""

from dataclasses import dataclass, field

import stripe
from django.conf import settings
from rest_framework import status

from celaest.errors import DomainError, InvalidInput, NotFound

from .models import CreditNote, Invoice, Order, PaymentGateway, PaymentMethod
from .pricing import amount_in_minor_units


class GatewayUnavailable(DomainError):
    """The payment gateway failed or could not be reached; the order is unchanged (HTTP 502)."""

    status_code = status.HTTP_502_BAD_GATEWAY
    code = "gateway_error"
    message = "The payment gateway could not process the request; try again."


@dataclass(frozen=True)
class PaymentSession:
    """What the customer needs to pay: the gateway's reference for the payment, and either a
    client secret (card gateways) or instructions (bank transfer)."""

    reference: str
    client_secret: str = ""
    instructions: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Collection:
    """The outcome of collecting an invoice: ``paid``, ``pending`` (a transfer is awaited) or
    ``failed`` (``error`` says why: the gateway's decline code or a short reason)."""

    outcome: str
    reference: str = ""
    error: str = ""


class GatewayBackend:
    #: a collection attempt only says that the money is awaited (``pending``), calling nobody: a
    #: renewal batch records its invoices' first attempts in one UPDATE instead of one by one
    collection_is_awaited = False

    def __init__(self, gateway: PaymentGateway):
        self.gateway = gateway

    def payment_start(self, *, order: Order) -> PaymentSession:
        raise NotImplementedError

    def payment_verify(self, *, order: Order, reference: str) -> bool:
        """Whether the gateway itself says ``reference`` paid ``order`` in full."""
        raise NotImplementedError

    def refund(self, *, order: Order) -> str:
        """Give the money back; returns the gateway's refund reference ("" when done by hand)."""
        raise NotImplementedError

    def invoice_collect(self, *, invoice: Invoice, payment_method: PaymentMethod | None, attempt: int) -> Collection:
        """Collect a subscription invoice without the customer present. Runs outside any
        database transaction; never raises for a decline or an outage (``failed``)."""
        raise NotImplementedError

    def invoice_refund(self, *, invoice: Invoice, note: CreditNote) -> str:
        """Refund a credit note's total of the invoice's payment; the gateway's reference."""
        return ""

    def invoice_payment_verify(self, *, invoice: Invoice, reference: str) -> bool:
        """Whether the gateway itself says ``reference`` paid ``invoice`` in full."""
        return False


class ManualGateway(GatewayBackend):
    collection_is_awaited = True

    def payment_start(self, *, order: Order) -> PaymentSession:
        bank = {key: value for key, value in (self.gateway.config or {}).items() if key in _BANK_DETAILS}
        return PaymentSession(
            reference=order.order_number,
            instructions={
                "method": "bank_transfer",
                "reference": order.order_number,
                "amount": str(order.total),
                "currency": order.currency,
                **bank,
            },
        )

    def payment_verify(self, *, order: Order, reference: str) -> bool:
        return True  # staff saw the money arrive: that is the verification

    def refund(self, *, order: Order) -> str:
        return ""

    def invoice_collect(self, *, invoice: Invoice, payment_method: PaymentMethod | None, attempt: int) -> Collection:
        return Collection(outcome="pending", reference=invoice.invoice_number)


_BANK_DETAILS = ("beneficiary", "iban", "bic", "bank_name")


class StripeGateway(GatewayBackend):
    def _client(self) -> stripe.StripeClient:
        if not settings.STRIPE_API_KEY:
            raise GatewayUnavailable("Stripe is not configured (STRIPE_API_KEY).", code="gateway_not_configured")
        return stripe.StripeClient(
            settings.STRIPE_API_KEY,
            base_addresses={"api": settings.STRIPE_API_BASE},
            max_network_retries=2,
        )

    def payment_start(self, *, order: Order) -> PaymentSession:
        client = self._client()
        try:
            if order.gateway_reference:
                intent = client.v1.payment_intents.retrieve(order.gateway_reference)
            else:
                intent = client.v1.payment_intents.create(
                    params={
                        "amount": amount_in_minor_units(order.total, order.currency),
                        "currency": order.currency.lower(),
                        "description": order.order_number,
                        "metadata": {"order_id": str(order.pk), "order_number": order.order_number},
                        "automatic_payment_methods": {"enabled": True},
                    },
                    # Retries of the same checkout never create a second intent.
                    options={"idempotency_key": f"celaest-order-{order.pk}"},
                )
        except stripe.StripeError as exc:
            raise GatewayUnavailable(details={"gateway": [exc.user_message or type(exc).__name__]}) from exc
        return PaymentSession(reference=intent.id, client_secret=intent.client_secret or "")

    def _intent_pays(self, *, reference: str, total, currency: str, metadata: tuple[str, str]) -> bool:
        """Whether Stripe says the intent ``reference`` succeeded for ``total`` in ``currency``
        and was made for the document ``metadata`` names (``("order_id", id)``)."""
        try:
            intent = self._client().v1.payment_intents.retrieve(reference).to_dict()
        except stripe.StripeError as exc:
            raise GatewayUnavailable(details={"gateway": [exc.user_message or type(exc).__name__]}) from exc
        key, value = metadata
        return (
            intent.get("status") == "succeeded"
            and intent.get("amount_received") == amount_in_minor_units(total, currency)
            and intent.get("currency") == currency.lower()
            and (intent.get("metadata") or {}).get(key) == value
        )

    def payment_verify(self, *, order: Order, reference: str) -> bool:
        return self._intent_pays(
            reference=reference, total=order.total, currency=order.currency, metadata=("order_id", str(order.pk))
        )

    def refund(self, *, order: Order) -> str:
        if not order.gateway_reference:
            raise InvalidInput("This order has no Stripe payment to refund.", code="nothing_to_refund")
        try:
            refund = self._client().v1.refunds.create(
                params={"payment_intent": order.gateway_reference},
                options={"idempotency_key": f"celaest-refund-{order.pk}"},
            )
        except stripe.StripeError as exc:
            raise GatewayUnavailable(details={"gateway": [exc.user_message or type(exc).__name__]}) from exc
        return refund.id

    def invoice_collect(self, *, invoice: Invoice, payment_method: PaymentMethod | None, attempt: int) -> Collection:
        if payment_method is None or not payment_method.gateway_token:
            return Collection(outcome="failed", error="no_payment_method")
        params = {
            "amount": amount_in_minor_units(invoice.total, invoice.currency),
            "currency": invoice.currency.lower(),
            "payment_method": payment_method.gateway_token,
            "off_session": True,
            "confirm": True,
            "description": invoice.invoice_number,
            "metadata": {"invoice_id": str(invoice.pk), "invoice_number": invoice.invoice_number},
        }
        if payment_method.gateway_customer:
            params["customer"] = payment_method.gateway_customer
        try:
            intent = self._client().v1.payment_intents.create(
                params=params,
                # A retried job never charges one attempt twice; the next attempt is a new charge.
                options={"idempotency_key": f"celaest-invoice-{invoice.pk}-{attempt}"},
            )
        except stripe.CardError as exc:
            return Collection(outcome="failed", error=(exc.code or "card_declined")[:255])
        except (stripe.StripeError, GatewayUnavailable) as exc:
            return Collection(outcome="failed", error=(getattr(exc, "code", None) or type(exc).__name__)[:255])
        if intent.status == "succeeded":
            return Collection(outcome="paid", reference=intent.id)
        return Collection(outcome="failed", reference=intent.id, error=intent.status)

    def invoice_payment_verify(self, *, invoice: Invoice, reference: str) -> bool:
        return self._intent_pays(
            reference=reference,
            total=invoice.total,
            currency=invoice.currency,
            metadata=("invoice_id", str(invoice.pk)),
        )

    def invoice_refund(self, *, invoice: Invoice, note: CreditNote) -> str:
        if not invoice.gateway_reference.startswith("pi_"):
            raise InvalidInput("This invoice has no Stripe payment to refund.", code="nothing_to_refund")
        try:
            refund = self._client().v1.refunds.create(
                params={
                    "payment_intent": invoice.gateway_reference,
                    "amount": amount_in_minor_units(note.total, note.currency),
                    "metadata": {"credit_note_number": note.credit_note_number},
                },
                options={"idempotency_key": f"celaest-credit-{note.credit_note_number}"},
            )
        except stripe.StripeError as exc:
            raise GatewayUnavailable(details={"gateway": [exc.user_message or type(exc).__name__]}) from exc
        return refund.id


def stripe_event_construct(*, payload: bytes, signature: str) -> stripe.Event:
    """A Stripe webhook event, after the SDK checked its signature and timestamp against
    ``STRIPE_WEBHOOK_SECRET``; ``InvalidInput`` otherwise."""
    secret = settings.STRIPE_WEBHOOK_SECRET
    if not secret:
        # Not a server fault: this deployment simply has no Stripe webhook endpoint.
        raise NotFound("Stripe webhooks are not enabled on this deployment.", code="gateway_not_configured")
    try:
        return stripe.Webhook.construct_event(payload, signature, secret)
    except stripe.SignatureVerificationError as exc:
        raise InvalidInput("The Stripe signature does not match.", code="invalid_signature") from exc
    except ValueError as exc:
        raise InvalidInput("The webhook body is not a Stripe event.", code="malformed_request") from exc


_BACKENDS: dict[str, type[GatewayBackend]] = {
    PaymentGateway.Provider.MANUAL: ManualGateway,
    PaymentGateway.Provider.STRIPE: StripeGateway,
}


def gateway_backend(gateway: PaymentGateway) -> GatewayBackend:
    return _BACKENDS[gateway.provider](gateway)
