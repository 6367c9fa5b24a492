"""Every write to a row that a cache or a license snapshot copies retires every copy, whichever
path it takes: an instance save or delete, a queryset update, bulk_update, bulk_create, an admin
action. The caches and what they depend on are discovered (``registered_caches``, each cache's
``watched`` models, the snapshots' ``WATCHED``), so a cache is covered the day it is registered."""

import itertools

import pytest
from django.apps import apps
from django.contrib import admin
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.db.models import F
from django.test import RequestFactory
from django.urls import reverse

from celaest.readcache import on_change, registered_caches
from celaest.redis import redis_cache_client
from identity.models import Organization, User
from ipcontrol import snapshots
from licensing.models import License
from licensing.services import license_issue
from marketplace.models import ProductCategory
from tests import factories as f

pytestmark = pytest.mark.django_db(transaction=True)


def _model(watched):
    return apps.get_model(watched) if isinstance(watched, str) else watched._meta.concrete_model


def _dependents() -> dict[type, list]:
    """Each copied model, and the read caches that watch it."""
    found: dict[type, list] = {model: [] for model in snapshots.WATCHED}
    for read_cache in registered_caches():
        for watched in read_cache.watched:
            found.setdefault(_model(watched), []).append(read_cache)
    return found


COPIED = sorted(_dependents(), key=lambda model: model._meta.label)


@pytest.fixture
def world():
    """One row of every copied model, all tied together."""
    plan = f.SubscriptionPlanFactory()
    license = f.LicenseFactory(plan=plan)
    organization = license.organization
    user = f.UserFactory(organization=organization)
    api_key = f.UserApiKeyFactory(user=user)
    rows = [
        organization,
        user,
        plan,
        license,
        f.LicenseIpBindingFactory(license=license),
        api_key,
        f.AIModelFactory(),
        f.AIApiKeyFactory(),
        f.WebhookFactory(organization=organization),
        f.SystemConfigFactory(),
        f.FeatureFlagFactory(),
        f.AIModelFallbackFactory(),
        f.ApiKeyLicenseFactory(api_key=api_key, license=license),
        f.OrganizationAILicenseFactory(organization=organization, license=license),
    ]
    by_model = {row._meta.concrete_model: row for row in rows}
    missing = [model.__name__ for model in COPIED if model not in by_model]
    assert not missing, f"add a row of {missing} to this fixture: a cache copies them"
    return by_model, license


_probes = itertools.count()


class Copies:
    """A copy in every read cache that watches ``model`` and, when snapshots are made of it, the
    license's snapshot token: all must be retired by one write."""

    def __init__(self, model, license):
        self.caches = _dependents()[model]
        self.snapshot = model in snapshots.WATCHED
        self.license = license
        self.probe = ("probe", next(_probes))
        for read_cache in self.caches:
            assert read_cache.get(self.probe, lambda: "before") == "before"
        self.generations = self._generations()
        self.token = self._token()

    def _generations(self):
        return [cache.get(read_cache.generation_key) for read_cache in self.caches]

    def _token(self):
        key_hash = snapshots.license_key_hash(self.license.license_key)
        return redis_cache_client().mget(snapshots.snapshot_fetch_keys(key_hash)[1:])

    def assert_retired(self, how: str):
        for read_cache, before, now in zip(self.caches, self.generations, self._generations(), strict=True):
            assert now != before, f"{how} left the shared generation of {read_cache.name!r} (other processes)"
            assert read_cache.get(self.probe, lambda: "after") == "after", f"{how} left {read_cache.name!r}'s copy"
        if self.snapshot:
            assert self._token() != self.token, f"{how} left the license snapshot current"


def _seen_field(model) -> str:
    """A column whose change every subscriber sees."""
    unseen = set(snapshots.WATCHED[model][1]) if model in snapshots.WATCHED else set()
    for field in model._meta.concrete_fields:
        if not field.primary_key and field.name not in unseen | _HOT_COUNTERS:
            return field.attname
    raise AssertionError(f"{model.__name__} has no column to change")


#: columns some caches deliberately do not watch (use counts written on hot paths)
_HOT_COUNTERS = {"usage_count", "last_used_at", "last_used_ip", "ai_requests_used", "last_seen"}


def _snapshot_token_exists(license):
    key_hash = snapshots.license_key_hash(license.license_key)
    snapshots.snapshot_token(snapshots.LicenseSnapshot(key_hash=key_hash, token=None))


WRITES = {
    "save": lambda model, row: row.save(),
    "save_update_fields": lambda model, row: row.save(update_fields=[_seen_field(model)]),
    "queryset_update": lambda model, row: model._default_manager.filter(pk=row.pk).update(
        **{_seen_field(model): F(_seen_field(model))}
    ),
    "bulk_update": lambda model, row: model._default_manager.bulk_update([row], [_seen_field(model)]),
    "bulk_create": lambda model, row: model._default_manager.bulk_create([row], ignore_conflicts=True),
    "delete": lambda model, row: model._base_manager.filter(pk=row.pk).delete(),
    "instance_delete": lambda model, row: row.delete(),
}
#: deletes take a fresh row, which nothing references (the fixture's rows are protected)
FRESH_ROW = {"delete", "instance_delete"}


def _fresh_row(model):
    factory = next(
        item
        for item in vars(f).values()
        if isinstance(item, type)
        and issubclass(item, f.factory.django.DjangoModelFactory)
        and getattr(item._meta, "model", None) is model
    )
    return factory()


def _license_of(row, license):
    """The license whose snapshot a write to ``row`` must retire."""
    return row if isinstance(row, License) else getattr(row, "license", license)


@pytest.mark.parametrize("how", WRITES)
@pytest.mark.parametrize("model", COPIED, ids=lambda model: model._meta.label)
def test_a_write_retires_every_copy(world, model, how):
    rows, license = world
    row = _fresh_row(model) if how in FRESH_ROW else rows[model]
    license = _license_of(row, license)
    _snapshot_token_exists(license)
    copies = Copies(model, license)
    WRITES[how](model, row)
    copies.assert_retired(f"{model.__name__} {how}")


@pytest.mark.parametrize(
    "model", [model for model in COPIED if model in admin.site._registry], ids=lambda model: model._meta.label
)
def test_an_admin_action_that_changes_rows_retires_every_copy(world, client, model):
    staff = User.objects.create_superuser(email="root@invalidation-tests.invalid", password="not-used-here-1")
    client.force_login(staff)
    rows, license = world
    row = rows[model]
    model_admin = admin.site._registry[model]
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    request = RequestFactory().get("/")
    request.user = staff
    for action in model_admin.get_actions(request):
        if action == "delete_selected":
            continue
        _snapshot_token_exists(_license_of(row, license))
        copies = Copies(model, _license_of(row, license))
        before = _values(model._base_manager.get(pk=row.pk))
        client.post(url, {"action": action, "_selected_action": [str(row.pk)]})
        after = model._base_manager.filter(pk=row.pk).first()
        if after is None or _values(after) != before:
            copies.assert_retired(f"the admin action {action!r} on {model.__name__}")


def _values(row) -> dict:
    return {field.attname: getattr(row, field.attname) for field in row._meta.concrete_fields}


def test_raising_max_users_retires_the_api_key_cache(world):
    """The bug of issue 18: seats raised by a queryset update left the API-key cache's copy of
    the organization."""
    rows, license = world
    organization = rows[Organization]
    plan = f.SubscriptionPlanFactory(limits={"max_users": organization.max_users + 5})
    copies = Copies(Organization, license)
    license_issue(organization=organization, plan=plan)
    assert Organization.objects.get(pk=organization.pk).max_users == organization.max_users + 5
    copies.assert_retired("raising max_users")


def test_a_model_with_a_silent_manager_cannot_be_watched():
    with pytest.raises(ImproperlyConfigured, match="do not announce"):
        on_change(ProductCategory, lambda change: None)
