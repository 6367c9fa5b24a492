"""The dependency order of the apps is a test, not a hope: import-linter's contracts
(``[tool.importlinter]`` in pyproject.toml) hold for the code that ships, every CELAEST app has
its place in them, and the base layer acts on the apps only through observers they connect."""

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from django.conf import settings

from audit.admin_audit import admin_write_auditor
from audit.api_audit import api_write_auditor
from audit.models import AuditLog
from audit.services import audit_record, job_failure_record
from celaest import hooks
from identity.services import organization_update
from tests import factories as f

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]
IMPORT_LINTER = PYPROJECT["importlinter"]


def test_the_import_contracts_are_kept():
    lint = subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports")), "--no-cache", "--no-logo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_every_celaest_app_has_its_place_in_the_layers():
    (layers,) = (c["layers"] for c in IMPORT_LINTER["contracts"] if c["type"] == "layers")
    placed = [app.strip() for layer in layers for app in layer.split("|")]
    assert sorted(placed) == sorted([*settings.CELAEST_APPS, "celaest"])
    assert sorted(IMPORT_LINTER["root_packages"]) == sorted(placed)
    assert placed[-1] == "celaest", "the project package is the base: it imports no app"


def test_the_pyproject_lists_of_apps_are_celaest_apps():
    """pyproject.toml names the apps again where it cannot read the settings: each list holds
    exactly CELAEST_APPS (and the project package, or the tests), so none drifts from them."""
    apps = sorted(settings.CELAEST_APPS)
    assert sorted(PYPROJECT["pytest"]["ini_options"]["testpaths"]) == sorted([*apps, "tests"])
    assert sorted(PYPROJECT["ruff"]["lint"]["isort"]["known-first-party"]) == sorted([*apps, "celaest"])
    assert sorted(IMPORT_LINTER["root_packages"]) == sorted([*apps, "celaest"])


def test_audit_observes_the_base_and_identity():
    assert admin_write_auditor in hooks.admin_write_observers
    assert api_write_auditor in hooks.api_write_observers
    assert job_failure_record in hooks.job_failure_observers
    assert audit_record in hooks.change_observers


def test_observers_are_told_in_the_order_they_connected_and_once():
    observers = hooks.Observers()
    told = []

    def first(**event):
        told.append(("first", event))

    def second(**event):
        told.append(("second", event))

    for observer in (first, second, first):  # a ready() that runs twice connects nothing twice
        observers.connect(observer)
    for observer in observers:
        observer(name="job")
    assert told == [("first", {"name": "job"}), ("second", {"name": "job"})]

    observers.disconnect(first)
    assert list(observers) == [second]


@pytest.mark.django_db
def test_a_change_is_audited_through_the_hook_and_nothing_happens_without_an_observer():
    organization = f.OrganizationFactory(name="Before")
    organization_update(organization=organization, name="Audited")
    assert AuditLog.objects.get(resource_id=str(organization.pk)).changes == {"name": ["Before", "Audited"]}

    hooks.change_observers.disconnect(audit_record)
    try:
        organization_update(organization=organization, name="Unobserved")
    finally:
        hooks.change_observers.connect(audit_record)
    organization.refresh_from_db()
    assert organization.name == "Unobserved"
    assert AuditLog.objects.filter(resource_id=str(organization.pk)).count() == 1
