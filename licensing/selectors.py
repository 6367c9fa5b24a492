"""Reads for licensing: what a license actually allows."""

from .models import License

#: The limits a plan may set (``SubscriptionPlan.limits``) and a license may override
#: (``License.custom_limits``). A value is a non-negative integer, or null for "unlimited".
PLAN_LIMIT_KEYS = frozenset(
    {"max_users", "ai_requests_per_month", "tokens_per_month", "max_machines", "max_batch_size"}
)


def license_effective_limits(*, license: License) -> dict:
    """The limits that apply to ``license``: its plan's limits overlaid by its custom limits.
    (``license`` may be anything read like a ``License``: validation passes the facts it keeps.)

    A key present in ``custom_limits`` wins over the plan's value, including an explicit null
    (unlimited). This is the one place the overlay is computed.
    """
    return {**(license.plan.limits or {}), **(license.custom_limits or {})}
