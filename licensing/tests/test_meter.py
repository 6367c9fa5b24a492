"""The usage meter in Redis (``licensing.meter``): exact under concurrency without a row lock,
written behind to PostgreSQL, and neither losing nor doubling a count when a process dies at any
point between counting and writing."""

import threading
import uuid
from decimal import Decimal

import pytest
from django.db import connections, transaction

from celaest.errors import LimitExceeded
from celaest.redis import redis_client
from licensing import meter
from licensing.models import License, LicenseUsageLog
from licensing.usage import license_usage_commit, license_usage_release, license_usage_reserve, usage_period
from tests import factories as f


@pytest.fixture
def behind(settings):
    """Writing behind, as in production: PostgreSQL takes the counts when the meter is flushed."""
    settings.LICENSE_METER_WRITE_THROUGH = False


def _license(limit=None, tokens=None) -> License:
    plan = f.SubscriptionPlanFactory(limits={"ai_requests_per_month": limit, "tokens_per_month": tokens})
    return f.LicenseFactory(plan=plan)


def _counts(license: License) -> tuple[int, int]:
    row = LicenseUsageLog.objects.filter(license=license).first()
    return License.objects.get(pk=license.pk).ai_requests_used, row.ai_requests_count if row else 0


@pytest.mark.django_db
def test_counts_reach_postgresql_when_the_meter_is_flushed(behind):
    license = _license()
    for _ in range(5):
        license_usage_reserve(license=license, task_id=uuid.uuid4())
    license_usage_commit(license=license, tokens_input=100, tokens_output=40, tokens_cached=20, cost=Decimal("0.0105"))
    assert _counts(license) == (0, 0)
    assert meter.meter_pending() == 6
    assert meter.meter_flush() == 6
    assert _counts(license) == (5, 5)
    row = LicenseUsageLog.objects.get(license=license)
    assert (row.tokens_input, row.tokens_output, row.tokens_cached, row.calculated_cost) == (
        100, 40, 20, Decimal("0.0105")
    )  # fmt: skip
    assert meter.meter_pending() == 0 and meter.meter_flush() == 0


@pytest.mark.django_db
def test_counting_or_giving_back_a_task_twice_does_nothing(behind):
    license = _license(limit=10)
    task = uuid.uuid4()
    license_usage_reserve(license=license, task_id=task)
    license_usage_reserve(license=license, task_id=task)  # a takeover of the same task
    meter.meter_flush()
    assert _counts(license) == (1, 1)
    license_usage_release(license=license, task_id=task)
    license_usage_release(license=license, task_id=task)
    meter.meter_flush()
    assert _counts(license) == (0, 0)


@pytest.mark.django_db(transaction=True)
def test_a_limit_of_20_under_100_concurrent_reservations_counts_exactly_20(behind):
    license = _license(limit=20)
    start = threading.Barrier(100)
    outcomes = []

    def one():
        start.wait()
        try:
            license_usage_reserve(license=license, task_id=uuid.uuid4())
            outcomes.append("ok")
        except LimitExceeded as refused:
            outcomes.append(refused.code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=one) for _ in range(100)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("ok") == 20 and outcomes.count("ai_requests_limit_reached") == 80
    meter.meter_flush()
    assert _counts(license) == (20, 20)


@pytest.mark.django_db
def test_a_flusher_that_dies_before_writing_leaves_its_batch_to_the_next(behind):
    license = _license()
    for _ in range(3):
        license_usage_reserve(license=license, task_id=uuid.uuid4())
    # The batch is set aside, then its flusher dies before PostgreSQL took it.
    claimed = meter._scripts()["claim"](keys=[meter.JOURNAL, meter.CLAIMED], args=["dead-flusher", 100])
    assert claimed.startswith(b"dead-flusher\n")
    assert _counts(license) == (0, 0)
    license_usage_reserve(license=license, task_id=uuid.uuid4())  # meanwhile, one more
    assert meter.meter_flush() == 4
    assert _counts(license) == (4, 4)


@pytest.mark.django_db
def test_a_flusher_that_dies_after_writing_is_not_written_twice(behind):
    license = _license()
    for _ in range(3):
        license_usage_reserve(license=license, task_id=uuid.uuid4())
    claimed = meter._scripts()["claim"](keys=[meter.JOURNAL, meter.CLAIMED], args=["half-done", 100])
    batch_id, _, body = claimed.decode().partition("\n")
    meter._apply(batch_id, [meter.json.loads(raw) for raw in body.split("\n")])  # committed; then it dies
    assert _counts(license) == (3, 3)
    meter.meter_flush()  # finds the batch set aside, already written: drops it
    assert _counts(license) == (3, 3)
    assert redis_client().get(meter.CLAIMED) is None


@pytest.mark.django_db
def test_a_month_lost_from_redis_is_seeded_from_postgresql_and_the_journal(behind):
    """Redis restarted without the month's hash (or it was never there): the next reservation
    rebuilds it from what PostgreSQL has plus what it has yet to take, so the limit holds."""
    license = _license(limit=5)
    for _ in range(2):
        license_usage_reserve(license=license, task_id=uuid.uuid4())
    meter.meter_flush()  # two written
    license_usage_reserve(license=license, task_id=uuid.uuid4())  # one still in the journal
    start, _end = usage_period()
    redis_client().delete(meter._period_key(license.pk, start))
    license_usage_reserve(license=license, task_id=uuid.uuid4())
    license_usage_reserve(license=license, task_id=uuid.uuid4())  # the fifth
    with pytest.raises(LimitExceeded), transaction.atomic():
        license_usage_reserve(license=license, task_id=uuid.uuid4())
    meter.meter_flush()
    assert _counts(license) == (5, 5)


@pytest.mark.django_db
def test_a_month_is_not_seeded_while_another_holds_the_flush_lock(behind, monkeypatch):
    """Seeding reads PostgreSQL and the journal as one: without the lock a batch could move from
    one to the other meanwhile and be counted twice, or not at all. Not held in time: a 503."""
    monkeypatch.setattr(meter._FlushLock, "WAIT_SECONDS", 0.2)
    license = _license(limit=5)
    redis_client().set(meter.LOCK, "another-flusher", px=30_000)
    with pytest.raises(meter.MeterBusy) as busy, transaction.atomic():
        license_usage_reserve(license=license, task_id=uuid.uuid4())
    assert busy.value.status_code == 503
    start, _end = usage_period()
    assert not redis_client().exists(meter._period_key(license.pk, start))
    redis_client().delete(meter.LOCK)
    license_usage_reserve(license=license, task_id=uuid.uuid4())
    meter.meter_flush()
    assert _counts(license) == (1, 1)


@pytest.mark.django_db(transaction=True)  # foreign keys are checked when the flush commits
def test_a_batch_holding_a_deleted_license_is_written_without_it(behind):
    """A license deleted between its count and the flush must not stop the meter: the batch is
    written without its changes, and the next batches go on."""
    gone, kept = _license(), _license()
    for license in (gone, kept):
        license_usage_reserve(license=license, task_id=uuid.uuid4())
    License._base_manager.filter(pk=gone.pk).delete()
    assert meter.meter_flush() == 2
    assert _counts(kept) == (1, 1)
    license_usage_reserve(license=kept, task_id=uuid.uuid4())
    assert meter.meter_flush() == 1 and _counts(kept) == (2, 2)


@pytest.mark.django_db
def test_the_token_limit_is_checked_against_tokens_counted_in_redis(behind):
    license = _license(tokens=1000)
    license_usage_reserve(license=license, task_id=uuid.uuid4())
    license_usage_commit(license=license, tokens_input=900, tokens_output=100, tokens_cached=0, cost=Decimal(0))
    with pytest.raises(LimitExceeded) as refused:
        license_usage_reserve(license=license, task_id=uuid.uuid4())
    assert refused.value.code == "tokens_limit_reached"


@pytest.mark.django_db
def test_the_beat_job_flushes(behind):
    from licensing.tasks import flush_usage_meter

    license = _license()
    license_usage_reserve(license=license, task_id=uuid.uuid4())
    assert flush_usage_meter() == 1
    assert _counts(license) == (1, 1)
