"""A Redis copy of what validation reads about a license, so that the hot path does not query
PostgreSQL.

A snapshot holds the license (status, expiry, limits, plan) and its active machines — or the
fact that no license has the key — under the key's hash. It is read in the same round trip as
the endpoint's rate limits (``rate_limits_hit_fetching``) and trusted only while its *token* is
current: the token is the key's version plus a generation shared by all keys. A change to a
license or to one of its machines sets a new version for its key; a change to any plan sets a
new generation. Those writes happen at once (the writer's own connection reads its change) and
again after commit, so that no copy read between the two survives. Versions are drawn from a
counter and the generation is random, so no token is ever reused — not after a lost version key,
nor after Redis itself lost everything (a new random generation then). A copy is filled with the
token observed *before* the database read: a change committed meanwhile has already replaced that
token, and the stale copy is never used.

Each process also keeps the last current copy of each key it saw, in a form the garbage collector
does not walk (see ``LicenseFacts``). The validation endpoint works its answer out from that copy
first and sends its attempt row with the rate limits, guarded by the copy's token: Redis appends
the row only if the token is still current, which makes a validation one round trip. Otherwise
the usual path runs on the snapshot read in that trip.

Changes made behind the ORM's back (raw SQL, or a Redis failure while a change is announced)
are seen at the latest after ``SNAPSHOT_TTL_SECONDS``.
"""

import hashlib
import json
import logging
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

import redis
from django.db import transaction
from django.db.models.signals import pre_save
from django.dispatch import receiver

from celaest.readcache import RowsChanged, on_change
from celaest.redis import cache_key, redis_cache_client
from licensing.models import License, SubscriptionPlan

from .models import LicenseIpBinding

logger = logging.getLogger(__name__)

SNAPSHOT_TTL_SECONDS = 600
#: versions outlive every copy they validate
VERSION_TTL_SECONDS = 86400
#: machine fields whose change does not alter a snapshot (validation itself refreshes them)
_UNSEEN_BINDING_FIELDS = frozenset(
    {"hostname", "name", "ip_address", "last_seen", "last_heartbeat_at", "lease_expires_at", "updated_at"}
)


def license_key_hash(normalized_key: str) -> str:
    """The name a (normalized) license key goes by in Redis: never the key itself."""
    return hashlib.sha256(normalized_key.encode()).hexdigest()[:32]


def _snapshot_key(key_hash: str) -> str:
    # v2: the copies carry the machine policy; a copy of the earlier layout is never read
    return cache_key(f"ipcontrol:license:v2:{key_hash}")


def _version_key(key_hash: str) -> str:
    return cache_key(f"ipcontrol:license-version:{key_hash}")


def _generation_key() -> str:
    return cache_key("ipcontrol:license-generation")


def _sequence_key() -> str:
    return cache_key("ipcontrol:license-sequence")


class PlanFacts(NamedTuple):
    """What validation reads of a license's plan (its limits, features and machine policy)."""

    code: str
    limits: dict | None
    features: dict | list | None
    machine_scheme: str = ""
    overage_allowance: int | None = None
    heartbeat_window_seconds: int | None = None


class LicenseFacts(NamedTuple):
    """What validation reads of a license (ids as text), read like a ``License`` by
    ``license_effective_limits``, ``license_status_refusal``, the answer and the certificate.

    Each server process keeps a copy of every license it validates, thousands of them for as long
    as they are current. Model instances cost ~16 objects each that every full collection of the
    garbage collector walked (~100 ms per 10,000 licenses, stalling the process's requests: the
    endpoint's p99). These tuples, their plans shared, with seats kept as plain tuples, cost two."""

    pk: str
    organization_id: str
    plan_id: str
    license_key: str
    status: str
    expires_at: datetime | None
    custom_limits: dict | None
    plan: PlanFacts
    #: the license's own policy overrides, extra entitlements and billing state
    machine_scheme: str = ""
    overage_allowance: int | None = None
    heartbeat_window_seconds: int | None = None
    entitlements: tuple[str, ...] = ()
    billing_state: str = ""


class Seat(NamedTuple):
    """A machine binding as validation needs it."""

    pk: str
    machine_id: str
    is_active: bool
    activated_at: datetime


Found = tuple[LicenseFacts, tuple[Seat, ...]] | None

#: each plan's facts, shared by every license copy on that plan (at most PLANS_KEPT)
_plans: dict[tuple, PlanFacts] = {}
PLANS_KEPT = 1_000


def plan_facts(plan_id: str, *facts) -> PlanFacts:
    """The facts of a plan (``PlanFacts``' fields in order), one object per distinct plan in the
    process."""
    key = (plan_id, json.dumps(facts, sort_keys=True, separators=(",", ":")))
    plan = _plans.get(key)
    if plan is None:
        if len(_plans) >= PLANS_KEPT:
            _plans.clear()
        plan = _plans[key] = PlanFacts(*facts)
    return plan


@dataclass(frozen=True)
class LicenseSnapshot:
    """What the request's first round trip brought back about its key: a current copy
    (``hit``, with ``found`` being the license and its active machines, or None for no license),
    or a miss with the token a new copy must carry."""

    key_hash: str
    token: str | None
    hit: bool = False
    found: Found = None


def snapshot_fetch_keys(key_hash: str) -> list[str]:
    """The Redis keys to read (in this order) for ``snapshot_from_fetched``."""
    return [_snapshot_key(key_hash), _version_key(key_hash), _generation_key()]


#: the last current copy this process saw of each key: (token, license, seats as plain tuples,
#: monotonic expiry), at most COPIES_KEPT
_copies: dict[str, tuple[str, LicenseFacts | None, tuple[tuple, ...], float]] = {}
COPIES_KEPT = 20_000


def snapshot_copy(key_hash: str) -> tuple[str, Found] | None:
    """This process's last copy of the key's snapshot and the token it was current under. It may
    be stale: use it only with a guard on that token (``GuardedPush``). Like the Redis copy, it
    lives ``SNAPSHOT_TTL_SECONDS``, which bounds how long a change made behind the ORM's back
    goes unseen."""
    kept = _copies.get(key_hash)
    if kept is None or kept[3] < time.monotonic():
        return None
    token, license, seats, _ = kept
    return token, (None if license is None else (license, tuple(map(Seat._make, seats))))


def _keep(key_hash: str, token: str, found: Found) -> None:
    """Keep ``found`` as the process copy. Its seats are stored as plain tuples of text and
    times, which the garbage collector stops tracking (a ``Seat`` is made again on each read)."""
    if len(_copies) >= COPIES_KEPT:
        _copies.clear()  # rare (that many distinct keys in one process); refilled as keys come back
    license, seats = found if found is not None else (None, ())
    _copies[key_hash] = (token, license, tuple(map(tuple, seats)), time.monotonic() + SNAPSHOT_TTL_SECONDS)


def snapshot_answers(found: Found, fingerprint: str) -> bool:
    """Whether a snapshot (active machines only) answers for ``fingerprint``: a machine without an
    active seat may have an inactive binding, which only the database knows."""
    return found is None or not fingerprint or any(seat.machine_id == fingerprint for seat in found[1])


def snapshot_from_fetched(key_hash: str, values: list[bytes | None]) -> LicenseSnapshot | None:
    """Decode what ``snapshot_fetch_keys`` read; None when there is no Redis cache."""
    if redis_cache_client() is None:
        return None
    stored, version, generation = values
    token = f"{version.decode()}:{generation.decode()}" if version and generation else None
    if token is None or stored is None:
        return LicenseSnapshot(key_hash=key_hash, token=token)
    if not stored.startswith(token.encode() + b"\n"):
        return LicenseSnapshot(key_hash=key_hash, token=token)
    found = _decode(json.loads(stored.partition(b"\n")[2]))
    _keep(key_hash, token, found)
    return LicenseSnapshot(key_hash=key_hash, token=token, hit=True, found=found)


def snapshot_token(snapshot: LicenseSnapshot) -> str | None:
    """The token a new copy of ``snapshot``'s key carries, created if the key has none yet.
    Call it before reading the database."""
    if snapshot.token is not None:
        return snapshot.token
    client = redis_cache_client()
    version_key, generation_key = _version_key(snapshot.key_hash), _generation_key()
    try:
        fresh = client.incr(_sequence_key())
        pipe = client.pipeline(transaction=False)
        pipe.set(version_key, fresh, nx=True, ex=VERSION_TTL_SECONDS)
        pipe.set(generation_key, secrets.token_hex(8), nx=True)
        pipe.get(version_key)
        pipe.get(generation_key)
        version, generation = pipe.execute()[2:]
    except redis.RedisError:
        logger.warning("license snapshot cache unavailable", exc_info=True)
        return None
    return f"{version.decode()}:{generation.decode()}" if version and generation else None


def snapshot_store(snapshot: LicenseSnapshot, token: str | None, found: Found) -> None:
    """Keep ``found`` (active machines only) as the copy for ``snapshot``'s key under ``token``."""
    if token is None:
        return
    body = json.dumps(_encode(found), separators=(",", ":"))
    try:
        redis_cache_client().set(_snapshot_key(snapshot.key_hash), f"{token}\n{body}", ex=SNAPSHOT_TTL_SECONDS)
    except redis.RedisError:
        logger.warning("license snapshot cache unavailable", exc_info=True)
        return
    active = None if found is None else (found[0], tuple(seat for seat in found[1] if seat.is_active))
    _keep(snapshot.key_hash, token, active)


def _encode(found: Found) -> dict | None:
    if found is None:
        return None
    license, seats = found
    plan = license.plan
    return {
        "license": [
            license.pk, license.organization_id, license.plan_id, license.license_key, license.status,
            license.expires_at.isoformat() if license.expires_at else None, license.custom_limits,
            license.machine_scheme, license.overage_allowance, license.heartbeat_window_seconds,
            license.entitlements, license.billing_state,
        ],
        "plan": list(plan),
        "seats": [[seat.pk, seat.machine_id, seat.activated_at.isoformat()] for seat in seats if seat.is_active],
    }  # fmt: skip


def _decode(data: dict | None) -> Found:
    if data is None:
        return None
    license_id, organization_id, plan_id, key, status, expires_at, custom_limits, *policy, billing = data["license"]
    policy[-1] = tuple(policy[-1] or ())  # the entitlements: a tuple of text, which the collector does not track
    license = LicenseFacts(
        license_id,
        organization_id,
        plan_id,
        key,
        status,
        datetime.fromisoformat(expires_at) if expires_at else None,
        custom_limits,
        plan_facts(plan_id, *data["plan"]),
        *policy,
        billing,
    )
    seats = tuple(
        Seat(pk=pk, machine_id=machine_id, is_active=True, activated_at=datetime.fromisoformat(activated_at))
        for pk, machine_id, activated_at in data["seats"]
    )
    return license, seats


def license_snapshots_forget(*, license_keys: Iterable[str] = (), license_ids: Iterable = ()) -> None:
    """Retire the copies of these licenses (by key, or by id), now and again after commit."""
    keys = set(license_keys)
    license_ids = set(license_ids)
    if license_ids:
        keys |= set(License.all_objects.filter(pk__in=license_ids).values_list("license_key", flat=True))
    hashes = [license_key_hash(key) for key in keys if key]
    if hashes and redis_cache_client() is not None:
        _versions_renew(hashes)
        transaction.on_commit(lambda: _versions_renew(hashes))


def license_snapshots_forget_all() -> None:
    """Retire every copy (a plan changed), now and again after commit."""
    if redis_cache_client() is not None:
        _generation_renew()
        transaction.on_commit(_generation_renew)


def _versions_renew(hashes: list[str]) -> None:
    client = redis_cache_client()
    try:
        last = client.incrby(_sequence_key(), len(hashes))
        pipe = client.pipeline(transaction=False)
        for offset, key_hash in enumerate(hashes):
            pipe.set(_version_key(key_hash), last - offset, ex=VERSION_TTL_SECONDS)
        pipe.execute()
    except redis.RedisError:
        logger.exception("could not retire the snapshots of %d license(s)", len(hashes))


def _generation_renew() -> None:
    client = redis_cache_client()
    try:
        client.set(_generation_key(), secrets.token_hex(8))
    except redis.RedisError:
        logger.exception("could not retire the license snapshots")


@receiver(pre_save, sender=License)
def _license_key_before(sender, instance: License, **kwargs):
    """Remember the stored key: were it ever changed, the old key's copies must go too."""
    if not instance._state.adding:
        instance._stored_license_key = (
            License.all_objects.filter(pk=instance.pk).values_list("license_key", flat=True).first()
        )


def _licenses_changed(change: RowsChanged) -> None:
    if change.instances:
        stored = [getattr(instance, "_stored_license_key", None) for instance in change.instances]
        keys = [instance.license_key for instance in change.instances]
        license_snapshots_forget(license_keys=[*keys, *filter(None, stored)])
    elif change.pks is not None:
        license_snapshots_forget(license_ids=change.pks)
    else:
        license_snapshots_forget_all()


def _bindings_changed(change: RowsChanged) -> None:
    if change.instances:
        license_snapshots_forget(license_ids=[instance.license_id for instance in change.instances])
    elif change.pks is not None:
        license_ids = LicenseIpBinding.objects.filter(pk__in=change.pks).values_list("license_id", flat=True)
        license_snapshots_forget(license_ids=set(license_ids))
    else:
        license_snapshots_forget_all()


def _plans_changed(change: RowsChanged) -> None:
    license_snapshots_forget_all()


# Every write to these rows announces itself (``celaest.db.on_change``), a queryset's update as
# much as a save. Usage counts and a machine's last sighting (the validation flush) do not alter
# a snapshot, so those writes cost nothing more.
#: the rows a snapshot is made of, what to do when they change, and which fields it does not hold
WATCHED = {
    License: (_licenses_changed, ("ai_requests_used",)),
    LicenseIpBinding: (_bindings_changed, _UNSEEN_BINDING_FIELDS),
    SubscriptionPlan: (_plans_changed, ()),
}
for _model, (_callback, _unseen) in WATCHED.items():
    on_change(_model, _callback, unseen_fields=_unseen, wants_rows=_callback is not _plans_changed)
