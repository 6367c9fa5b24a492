"""A process that races others for one key's budget (test_budgets): waits for the start signal in
Redis, tries its calls as fast as it can, prints how many it reserved. Redis only: the license's
month counter is seeded by the test, so no database is read.

Usage: python -m operations.tests.budget_racer <api key id> <license id> <daily limit> <cost> <calls>
"""

import os
import sys
import time
import uuid
from decimal import Decimal


def main(api_key_id: str, license_id: str, daily_limit: str, cost: str, calls: str) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "celaest.settings.test")
    import django

    django.setup()
    from celaest.errors import LimitExceeded
    from celaest.redis import redis_client
    from licensing.models import License, SubscriptionPlan
    from operations.budgets import budget_reserve
    from settings_app.models import UserApiKey

    api_key = UserApiKey(pk=uuid.UUID(api_key_id), spend_limit_daily_usd=Decimal(daily_limit))
    license = License(pk=uuid.UUID(license_id), plan=SubscriptionPlan(limits={}))
    client = redis_client()
    client.incr("budget-race:ready")
    deadline = time.monotonic() + 60
    while not client.exists("budget-race:go") and time.monotonic() < deadline:
        time.sleep(0.001)
    reserved = 0
    for _ in range(int(calls)):
        try:
            budget_reserve(
                api_key=api_key,
                license=license,
                model="any",
                max_cost_usd=Decimal(cost),
                estimated_tokens=10,
                call_id=uuid.uuid4(),
            )
            reserved += 1
        except LimitExceeded:
            pass
    print(reserved)


if __name__ == "__main__":
    main(*sys.argv[1:])
