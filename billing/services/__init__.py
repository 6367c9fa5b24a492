"""Writes for billing, one module per idea:

- ``payment_methods``: saved payment methods and the organization's default;
- ``catalogue``: gateways, tax rates and coupons staff manage, coupon redemptions;
- ``numbering``: gapless document numbers (orders, invoices);
- ``checkout``: orders priced on the server, the start of their payment;
- ``payments``: an order paid exactly once, refunded or cancelled (assets through
  ``marketplace.services``, licenses through ``licensing.services``);
- ``invoices``: issued, credited or void, and e-mailed;
- ``stripe_events``: Stripe's webhook events;
- ``stale_orders``: unpaid orders cancelled after a while;
- ``event_data``: the payloads of ``order.*`` and ``invoice.*`` events.

Callers import from the module that holds the idea (``billing.services.checkout``).
"""
