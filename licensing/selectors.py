"""Reads for licensing: what a license actually allows."""

from dataclasses import dataclass

from django.db.models import Q
from django.utils import timezone

from celaest import crypto

from .models import License, LicenseToken, MachineScheme, OverageAllowance

#: The limits a plan may set (``SubscriptionPlan.limits``) and a license may override
#: (``License.custom_limits``). A value is a non-negative integer, or null for "unlimited".
PLAN_LIMIT_KEYS = frozenset(
    {"max_users", "ai_requests_per_month", "tokens_per_month", "max_machines", "max_batch_size"}
)

#: the heartbeat window of a floating license whose plan and license set none: a floating seat
#: is always a lease
FLOATING_DEFAULT_HEARTBEAT_SECONDS = 600


def license_effective_limits(*, license: License) -> dict:
    """The limits that apply to ``license``: its plan's limits overlaid by its custom limits.
    (``license`` may be anything read like a ``License``: validation passes the facts it keeps.)

    A key present in ``custom_limits`` wins over the plan's value, including an explicit null
    (unlimited). This is the one place the overlay is computed.
    """
    return {**(license.plan.limits or {}), **(license.custom_limits or {})}


@dataclass(frozen=True)
class LicensePolicy:
    """The machine policy of a license: its plan's, overridden by the license where it sets one."""

    machine_scheme: str
    #: null: unlimited
    max_machines: int | None
    #: percent of ``max_machines`` that may be active (100: no overage)
    overage_allowance: int
    #: null: no heartbeat required
    heartbeat_window_seconds: int | None
    #: the plan's features plus the license's extra entitlements, sorted
    entitlements: tuple[str, ...]

    @property
    def machine_ceiling(self) -> int | None:
        """How many machines may be active at most, overage included (rounded down)."""
        if self.max_machines is None:
            return None
        return self.max_machines * self.overage_allowance // 100

    def is_overage(self, seat_rank: int) -> bool:
        """Whether the machine activated ``seat_rank``-th (0 first) is beyond the limit."""
        return self.max_machines is not None and seat_rank >= self.max_machines


def license_policy(*, license: License) -> LicensePolicy:
    """The policy that applies to ``license`` (a ``License`` or validation's facts of one)."""
    plan = license.plan
    scheme = license.machine_scheme or plan.machine_scheme or MachineScheme.NODE_LOCKED
    overage = license.overage_allowance or plan.overage_allowance or OverageAllowance.NONE
    window = license.heartbeat_window_seconds
    if window is None:
        window = plan.heartbeat_window_seconds
    if not window and scheme == MachineScheme.FLOATING and license.heartbeat_window_seconds is None:
        window = FLOATING_DEFAULT_HEARTBEAT_SECONDS
    max_machines = license_effective_limits(license=license).get("max_machines")
    return LicensePolicy(
        machine_scheme=scheme,
        max_machines=max_machines if isinstance(max_machines, int) else None,
        overage_allowance=int(overage),
        heartbeat_window_seconds=window or None,
        entitlements=license_entitlements(license=license),
    )


def license_entitlements(*, license: License) -> tuple[str, ...]:
    """The entitlement codes of ``license``: its plan's features plus its own extra ones."""
    features = license.plan.features
    plan_codes = features if isinstance(features, list) else list(features or {})
    return tuple(sorted({*map(str, plan_codes), *map(str, license.entitlements or ())}))


def license_token_lookup(*, raw: str) -> LicenseToken | None:
    """The usable token ``raw`` stands for (not revoked, not expired, its license not deleted),
    with its license loaded; None for anything else."""
    if not raw.startswith(LicenseToken.PREFIX) or len(raw) > 128:
        return None
    now = timezone.now()
    return (
        LicenseToken.objects.select_related("license")
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now), token_hash=crypto.hash_secret(raw))
        .filter(revoked_at__isnull=True, license__deleted_at__isnull=True)
        .first()
    )
