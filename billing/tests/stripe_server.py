"""A local HTTP server that speaks the part of Stripe's REST API the stripe gateway uses
(PaymentIntents create/retrieve, confirmed off-session charges of a saved method, Refunds create,
whole or partial), so tests exercise the real ``stripe`` SDK. Methods listed in ``declined`` are
declined as Stripe declines a card (HTTP 402, ``card_error``).

It checks what Stripe checks for these calls: the bearer secret key, form-encoded parameters,
and idempotency keys (a repeated key returns the first response). ``signed_event`` builds a
webhook delivery signed the way Stripe signs them (``Stripe-Signature: t=...,v1=HMAC-SHA256``).
"""

import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl


def _nest(pairs: list[tuple[str, str]]) -> dict:
    """``metadata[order_id]=x`` → ``{"metadata": {"order_id": "x"}}`` (Stripe's form encoding)."""
    out: dict = {}
    for key, value in pairs:
        parts = re.findall(r"[^\[\]]+", key)
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


class FakeStripe:
    def __init__(self, api_key: str):
        self.api_key = api_key
        self.intents: dict[str, dict] = {}
        self.refunds: dict[str, dict] = {}
        self.idempotent: dict[str, tuple[int, dict]] = {}
        self.requests: list[tuple[str, str]] = []
        self.fail_next = 0
        self.declined: set[str] = set()
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def _reply(self, status: int, body: dict):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Request-Id", f"req_{secrets.token_hex(6)}")
                self.end_headers()
                self.wfile.write(data)

            def _handle(self, method: str):
                length = int(self.headers.get("Content-Length") or 0)
                form = _nest(parse_qsl(self.rfile.read(length).decode())) if length else {}
                status, body = fake.dispatch(method, self.path, form, self.headers)
                self._reply(status, body)

            def do_GET(self):  # noqa: N802 - http.server's naming
                self._handle("GET")

            def do_POST(self):  # noqa: N802
                self._handle("POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    @staticmethod
    def _error(status: int, message: str, code: str = "", kind: str = "invalid_request_error"):
        return status, {"error": {"type": kind, "message": message, "code": code}}

    def dispatch(self, method: str, path: str, form: dict, headers) -> tuple[int, dict]:
        with self.lock:
            self.requests.append((method, path))
            if headers.get("Authorization") != f"Bearer {self.api_key}":
                return self._error(401, "Invalid API Key provided.", kind="invalid_request_error")
            if self.fail_next:
                self.fail_next -= 1
                return self._error(500, "Something went wrong.", kind="api_error")
            key = headers.get("Idempotency-Key")
            if method == "POST" and key and key in self.idempotent:
                return self.idempotent[key]
            result = self._route(method, path.split("?")[0], form)
            if method == "POST" and key:
                self.idempotent[key] = result
            return result

    def _route(self, method: str, path: str, form: dict) -> tuple[int, dict]:
        if method == "POST" and path == "/v1/payment_intents":
            if not str(form.get("amount", "")).isdigit() or not form.get("currency"):
                return self._error(400, "Missing required param: amount.", "parameter_missing")
            intent_id = f"pi_{secrets.token_hex(12)}"
            intent = {
                "id": intent_id,
                "object": "payment_intent",
                "amount": int(form["amount"]),
                "amount_received": 0,
                "currency": form["currency"],
                "description": form.get("description"),
                "metadata": form.get("metadata", {}),
                "status": "requires_payment_method",
                "client_secret": f"{intent_id}_secret_{secrets.token_hex(8)}",
                "livemode": False,
            }
            self.intents[intent_id] = intent
            if form.get("confirm") == "true":
                return self._confirm(intent, form)
            return 200, intent
        match = re.fullmatch(r"/v1/payment_intents/([A-Za-z0-9_]+)", path)
        if method == "GET" and match:
            intent = self.intents.get(match.group(1))
            if intent is None:
                return self._error(404, f"No such payment_intent: '{match.group(1)}'", "resource_missing")
            return 200, intent
        if method == "POST" and path == "/v1/refunds":
            intent = self.intents.get(form.get("payment_intent", ""))
            if intent is None or intent["status"] != "succeeded":
                return self._error(
                    400, "This PaymentIntent has no successful charge to refund.", "charge_not_refundable"
                )
            amount = int(form["amount"]) if str(form.get("amount", "")).isdigit() else intent["amount_received"]
            refunded = sum(r["amount"] for r in self.refunds.values() if r["payment_intent"] == intent["id"])
            if amount > intent["amount_received"] - refunded:
                return self._error(400, "Refund amount is greater than the unrefunded amount.", "amount_too_large")
            refund = {
                "id": f"re_{secrets.token_hex(12)}",
                "object": "refund",
                "amount": amount,
                "currency": intent["currency"],
                "payment_intent": intent["id"],
                "status": "succeeded",
            }
            self.refunds[refund["id"]] = refund
            return 200, refund
        return self._error(404, f"Unrecognized request URL ({method}: {path}).")

    def _confirm(self, intent: dict, form: dict) -> tuple[int, dict]:
        """A server-side confirmation (``confirm=true``), as an off-session renewal makes it."""
        method = form.get("payment_method", "")
        intent["payment_method"] = method
        intent["customer"] = form.get("customer")
        if not method:
            return self._error(400, "You must provide a payment method.", "parameter_missing")
        if method in self.declined:
            intent["status"] = "requires_payment_method"
            intent["last_payment_error"] = {"code": "card_declined", "decline_code": "insufficient_funds"}
            return 402, {
                "error": {
                    "type": "card_error",
                    "code": "card_declined",
                    "decline_code": "insufficient_funds",
                    "message": "Your card has insufficient funds.",
                    "payment_intent": dict(intent),
                }
            }
        intent["status"] = "succeeded"
        intent["amount_received"] = intent["amount"]
        return 200, intent

    def succeed(self, intent_id: str, *, amount: int | None = None) -> dict:
        """What a customer confirming the payment client-side does to the intent."""
        with self.lock:
            intent = self.intents[intent_id]
            intent["status"] = "succeeded"
            intent["amount_received"] = intent["amount"] if amount is None else amount
            return dict(intent)


def signed_event(event_type: str, obj: dict, *, secret: str, timestamp: int | None = None) -> tuple[bytes, str]:
    """A webhook body and its ``Stripe-Signature`` header, as Stripe would send them."""
    payload = json.dumps(
        {
            "id": f"evt_{secrets.token_hex(12)}",
            "object": "event",
            "api_version": "2025-01-27.acacia",
            "created": int(time.time()),
            "type": event_type,
            "livemode": False,
            "data": {"object": obj},
        }
    ).encode()
    timestamp = int(time.time()) if timestamp is None else timestamp
    signature = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return payload, f"t={timestamp},v1={signature}"
