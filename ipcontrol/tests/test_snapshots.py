"""The Redis copy of licenses that validation reads: used without a query while current, and
never once a change to the license, its machines or its plan has retired it."""

import gc
import json
from datetime import timedelta

import pytest
import redis
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from celaest.redis import redis_cache_client
from ipcontrol import buffer, snapshots
from ipcontrol.selectors import license_seats_lookup
from ipcontrol.services import bindings_deactivate_stale, license_activate, license_deactivate
from licensing.services import license_reinstate, license_renew, license_suspend
from tests import factories as f

pytestmark = pytest.mark.django_db

VALIDATE = "/api/v1/licenses/validate"
KEY = "CEL-7K3Q0-9MZ2D-4T8VW-0HBNC-Q5R1E-JA6YP"


@pytest.fixture
def license():
    plan = f.SubscriptionPlanFactory(limits={"max_machines": 2})
    return f.LicenseFactory(plan=plan, license_key=KEY)


def _validate(fingerprint="fp-1", key=KEY) -> dict:
    response = APIClient().post(
        VALIDATE, {"key": key, "fingerprint": fingerprint}, format="json", REMOTE_ADDR="203.0.113.5"
    )
    assert response.status_code == 200, response.content
    return response.json()


def _read(key=KEY) -> snapshots.LicenseSnapshot:
    key_hash = snapshots.license_key_hash(key)
    values = redis_cache_client().mget(snapshots.snapshot_fetch_keys(key_hash))
    return snapshots.snapshot_from_fetched(key_hash, values)


def test_a_current_copy_answers_without_a_query(license):
    license_activate(key=KEY, fingerprint="fp-1")
    assert _validate()["code"] == "VALID"  # fills the copy
    assert _read().hit
    with CaptureQueriesContext(connection) as queries:
        body = _validate()
    assert body["code"] == "VALID" and body["license"]["active_machines"] == 1
    assert len(queries) == 0, [query["sql"] for query in queries]


def test_unknown_keys_are_remembered_until_a_license_takes_the_key():
    assert _validate()["code"] == "NOT_FOUND"
    assert _read().hit and _read().found is None
    f.LicenseFactory(license_key=KEY)
    license_activate(key=KEY, fingerprint="fp-1")
    assert _validate()["code"] == "VALID"


def test_lifecycle_changes_retire_the_copy(license):
    license_activate(key=KEY, fingerprint="fp-1")
    assert _validate()["code"] == "VALID"
    license_suspend(license=license, reason="unpaid")
    assert _validate()["code"] == "SUSPENDED"
    license_reinstate(license=license)
    assert _validate()["code"] == "VALID"
    license.refresh_from_db()
    license.expires_at = timezone.now() - timedelta(seconds=1)
    license.save(update_fields=["expires_at"])
    assert _validate()["code"] == "EXPIRED"
    license_renew(license=license, days=30)
    assert _validate()["code"] == "VALID"
    license.soft_delete()
    assert _validate()["code"] == "NOT_FOUND"


def test_machine_changes_retire_the_copy(license):
    license_activate(key=KEY, fingerprint="fp-1")
    assert _validate("fp-1")["license"]["active_machines"] == 1
    license_activate(key=KEY, fingerprint="fp-2")
    assert _validate("fp-1")["license"]["active_machines"] == 2
    license_deactivate(key=KEY, fingerprint="fp-1")
    body = _validate("fp-1")
    assert body["code"] == "NO_MACHINE" and body["license"]["active_machines"] == 1


def test_a_machine_without_an_active_seat_is_read_from_the_database(license):
    """Its inactive binding is not in the copy, yet its attempt row names it."""
    license_activate(key=KEY, fingerprint="fp-1")
    license_activate(key=KEY, fingerprint="fp-2")
    license_deactivate(key=KEY, fingerprint="fp-2")
    assert _validate("fp-1")["code"] == "VALID"  # the copy: fp-1 only
    with CaptureQueriesContext(connection) as queries:
        assert _validate("fp-2")["code"] == "NO_MACHINE"
    assert len(queries) == 1


def test_stale_machines_freed_by_the_beat_job_retire_the_copy(license):
    license_activate(key=KEY, fingerprint="fp-1")
    assert _validate()["code"] == "VALID"
    license.ip_bindings.update(last_seen=timezone.now() - timedelta(days=400))
    assert bindings_deactivate_stale() == 1
    assert _validate()["code"] == "NO_MACHINE"


def test_plan_changes_retire_every_copy(license):
    license_activate(key=KEY, fingerprint="fp-1")
    license_activate(key=KEY, fingerprint="fp-2")
    assert _validate("fp-2")["code"] == "VALID"
    plan = license.plan
    plan.limits = {"max_machines": 1}
    plan.save()
    assert _validate("fp-2")["code"] == "TOO_MANY_MACHINES"


def test_a_copy_read_before_a_change_is_never_used(license):
    """A reader that missed, read the database, and stores after a writer committed: its copy
    carries the token it saw before reading, which the change has replaced."""
    license_activate(key=KEY, fingerprint="fp-1")
    missed = _read()
    token = snapshots.snapshot_token(missed)
    found = license_seats_lookup(key=KEY, fingerprint="fp-1")  # what the reader got before the change
    snapshots.license_snapshots_forget(license_keys=[KEY])
    snapshots.snapshot_store(missed, token, found)
    assert not _read().hit
    assert _validate()["code"] == "VALID"
    assert _read().hit


def test_a_lost_version_never_revives_an_old_copy(license):
    license_activate(key=KEY, fingerprint="fp-1")
    assert _validate()["code"] == "VALID"
    redis_cache_client().delete(snapshots.snapshot_fetch_keys(snapshots.license_key_hash(KEY))[1])
    assert not _read().hit  # no version: no copy is current
    assert _validate()["code"] == "VALID"
    assert _read().hit


def test_changes_are_announced_again_after_commit(license, django_capture_on_commit_callbacks):
    license_activate(key=KEY, fingerprint="fp-1")
    assert _validate()["code"] == "VALID"
    with django_capture_on_commit_callbacks() as callbacks:
        license_suspend(license=license, reason="unpaid")
        assert _validate()["code"] == "SUSPENDED"  # refilled inside the writer's transaction
        assert _read().hit
    for callback in callbacks:
        callback()
    assert not _read().hit  # the copy taken before commit is retired too


def test_a_validation_is_one_round_trip_while_the_process_copy_is_current(license, monkeypatch):
    license_activate(key=KEY, fingerprint="fp-1")
    assert _validate()["code"] == "VALID"  # reads the snapshot: the process keeps a copy
    sent = []
    execute = redis.Redis.execute_command

    def counted(client, *args, **options):
        sent.append(args[0])
        return execute(client, *args, **options)

    monkeypatch.setattr(redis.Redis, "execute_command", counted)
    with CaptureQueriesContext(connection) as queries:
        body = _validate()
    assert body["code"] == "VALID" and body["license"]["active_machines"] == 1
    assert len(queries) == 0 and sent == ["EVALSHA"]
    rows = redis_cache_client().lrange(buffer.BUFFER_KEY, 0, -1)
    assert len(rows) == 2 and json.loads(rows[-1])["result_code"] == "VALID"


def test_a_stale_process_copy_pushes_nothing(license):
    license_activate(key=KEY, fingerprint="fp-1")
    assert _validate()["code"] == "VALID"
    license_suspend(license=license, reason="unpaid")  # retires the copy this process holds
    assert _validate()["code"] == "SUSPENDED"
    rows = [json.loads(row) for row in redis_cache_client().lrange(buffer.BUFFER_KEY, 0, -1)]
    assert [row["result_code"] for row in rows] == ["VALID", "SUSPENDED"]
    assert _validate()["code"] == "SUSPENDED"  # and the new copy is used from then on


def test_a_process_copy_lives_no_longer_than_the_snapshot(license, monkeypatch):
    """A change made behind the ORM's back retires no token: the process copy, like the Redis
    one, must not outlive SNAPSHOT_TTL_SECONDS."""
    license_activate(key=KEY, fingerprint="fp-1")
    assert _validate()["code"] == "VALID"
    key_hash = snapshots.license_key_hash(KEY)
    assert snapshots.snapshot_copy(key_hash) is not None
    later = snapshots.time.monotonic() + snapshots.SNAPSHOT_TTL_SECONDS + 1
    monkeypatch.setattr(snapshots.time, "monotonic", lambda: later)
    assert snapshots.snapshot_copy(key_hash) is None


def test_a_changed_key_retires_the_old_keys_copies(license):
    license_activate(key=KEY, fingerprint="fp-1")
    assert _validate()["code"] == "VALID"
    license.license_key = "CEL-NEWKE-Y0000-00000-00000-00000-00000"
    license.save(update_fields=["license_key"])
    assert _validate()["code"] == "NOT_FOUND"
    assert _validate(key=license.license_key)["code"] == "VALID"


def test_snapshot_keys_follow_the_cache_settings(settings):
    """``cache_key`` keeps the key function it read once; a change of cache settings is seen."""
    from django.core.cache import cache

    from celaest.redis import cache_key

    assert cache_key("ipcontrol:license:abc") == cache.make_key("ipcontrol:license:abc")
    settings.CACHES = {"default": {**settings.CACHES["default"], "KEY_PREFIX": "other"}}
    assert cache_key("ipcontrol:license:abc") == cache.make_key("ipcontrol:license:abc")
    assert cache_key("ipcontrol:license:abc").startswith("other:")


def _tracked(value, seen=None) -> int:
    """How many objects the garbage collector tracks in ``value`` (containers, recursively)."""
    seen = set() if seen is None else seen
    if id(value) in seen:
        return 0
    seen.add(id(value))
    children = value.values() if isinstance(value, dict) else value if isinstance(value, tuple | list) else ()
    if hasattr(value, "__dict__"):
        children = list(vars(value).values())
    return int(gc.is_tracked(value)) + sum(_tracked(child, seen) for child in children)


def test_a_process_copy_costs_the_garbage_collector_two_objects(license):
    """Each process keeps a copy of every license it validates; a full collection walks every
    tracked object of every copy. A copy is its facts and an entry; its seats, times and ids are
    not tracked, and its plan is shared with the other licenses on that plan."""
    for fingerprint in ("fp-1", "fp-2"):
        license_activate(key=KEY, fingerprint=fingerprint)
    assert _validate()["code"] == "VALID"
    entry = snapshots._copies[snapshots.license_key_hash(KEY)]
    gc.collect()  # untracks the tuples that hold nothing trackable: the seats, then their tuple
    gc.collect()
    assert _tracked(entry) - _tracked(entry[1].plan) == 2
    other = f.LicenseFactory(plan=license.plan)
    license_activate(key=other.license_key, fingerprint="fp-1")
    assert _validate(key=other.license_key)["code"] == "VALID"
    assert snapshots._copies[snapshots.license_key_hash(other.license_key)][1].plan is entry[1].plan
    token, (facts, seats) = snapshots.snapshot_copy(snapshots.license_key_hash(KEY))
    assert [seat.machine_id for seat in seats] == ["fp-1", "fp-2"] and facts.pk == str(license.pk)
