"""Per-process read caches (``celaest.readcache``): copies are used while their generation holds,
and every kind of change retires them, in this process and (through Redis) in the others."""

import itertools
import threading

import pytest
from django.core.cache import cache
from django.db import connection, transaction

from celaest.readcache import ReadCache, generations_read_at_once, rows_changed
from identity.models import Organization
from tests import factories as f

pytestmark = pytest.mark.django_db(transaction=True)
_names = itertools.count()


@pytest.fixture
def organizations():
    """A cache of organization names with a load counter, watching Organization."""
    loads = []

    def name_of(pk):
        def load():
            loads.append(pk)
            row = Organization.objects.filter(pk=pk).first()
            return row.name if row else None

        return load

    read_cache = ReadCache(f"test-organizations-{next(_names)}").watch(Organization)
    return read_cache, name_of, loads


def _rename_behind_the_orm(org, name: str) -> None:
    """Raw SQL: the one write that does not announce itself."""
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {Organization._meta.db_table} SET name = %s WHERE id = %s", [name, org.pk])  # noqa: S608


def test_a_queryset_update_retires_the_copies(organizations):
    read_cache, name_of, _loads = organizations
    org = f.OrganizationFactory(name="Acme")
    read_cache.get(org.pk, name_of(org.pk))
    Organization.objects.filter(pk=org.pk).update(name="Updated")
    assert read_cache.get(org.pk, name_of(org.pk)) == "Updated"


def test_a_copy_is_used_until_a_save_retires_it(organizations):
    read_cache, name_of, loads = organizations
    org = f.OrganizationFactory(name="Acme")
    assert read_cache.get(org.pk, name_of(org.pk)) == "Acme"
    assert read_cache.get(org.pk, name_of(org.pk)) == "Acme"
    assert len(loads) == 1
    org.name = "Acme 2"
    org.save()
    assert read_cache.get(org.pk, name_of(org.pk)) == "Acme 2"
    assert len(loads) == 2


def test_another_process_change_is_seen_through_the_shared_generation(organizations):
    read_cache, name_of, loads = organizations
    org = f.OrganizationFactory(name="Acme")
    assert read_cache.get(org.pk, name_of(org.pk)) == "Acme"
    # Another process changed the row behind this one's back and moved the generation.
    _rename_behind_the_orm(org, "Elsewhere")
    assert read_cache.get(org.pk, name_of(org.pk)) == "Acme"  # nobody said so yet
    cache.set(read_cache.generation_key, "moved-by-another-process", timeout=None)
    assert read_cache.get(org.pk, name_of(org.pk)) == "Elsewhere"


@pytest.mark.parametrize(
    "announce",
    [
        lambda: rows_changed(Organization),  # raw SQL says so
        cache.clear,  # Redis lost everything: a fresh generation nobody's copies carry
    ],
    ids=["rows_changed", "cache_flushed"],
)
def test_a_change_behind_the_signals_is_seen_once_announced_or_when_the_cache_is_lost(organizations, announce):
    read_cache, name_of, _loads = organizations
    org = f.OrganizationFactory(name="Acme")
    read_cache.get(org.pk, name_of(org.pk))
    _rename_behind_the_orm(org, "Changed")
    announce()
    assert read_cache.get(org.pk, name_of(org.pk)) == "Changed"


def test_a_miss_is_not_kept(organizations):
    read_cache, name_of, loads = organizations
    missing = f.OrganizationFactory().pk
    Organization.all_objects.filter(pk=missing).delete()
    assert read_cache.get(missing, name_of(missing)) is None
    assert read_cache.get(missing, name_of(missing)) is None
    assert len(loads) == 2


def test_the_changing_transaction_reads_its_own_rows_and_a_rollback_leaves_nothing(organizations):
    read_cache, name_of, _loads = organizations
    org = f.OrganizationFactory(name="Acme")
    read_cache.get(org.pk, name_of(org.pk))
    seen_elsewhere = []

    with pytest.raises(RuntimeError), transaction.atomic():
        org.name = "Uncommitted"
        org.save()
        assert read_cache.get(org.pk, name_of(org.pk)) == "Uncommitted"  # its own change

        def elsewhere():
            seen_elsewhere.append(read_cache.get(org.pk, name_of(org.pk)))
            connection.close()  # the thread's own connection

        thread = threading.Thread(target=elsewhere)
        thread.start()
        thread.join()
        raise RuntimeError("roll back")
    assert seen_elsewhere == ["Acme"]  # another thread never sees the uncommitted name
    assert read_cache.get(org.pk, name_of(org.pk)) == "Acme"


def test_a_request_reads_every_generation_once(organizations):
    read_cache, name_of, loads = organizations
    org = f.OrganizationFactory(name="Acme")
    read_cache.get(org.pk, name_of(org.pk))
    with generations_read_at_once():
        cache.set(read_cache.generation_key, "moved-during-the-request", timeout=None)
        assert read_cache.get(org.pk, name_of(org.pk)) == "Acme"  # as of the request's start
        assert len(loads) == 1
    assert read_cache.get(org.pk, name_of(org.pk)) == "Acme"
    assert len(loads) == 2  # the next request sees the new generation and reloads


def test_names_are_unique():
    ReadCache("test-unique-name")
    with pytest.raises(ValueError, match="exists already"):
        ReadCache("test-unique-name")
