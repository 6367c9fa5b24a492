"""Sensitive system config values at rest: encrypted whichever way they are written (service,
API, admin form, ``config`` command, a plain ``create``), read in clear by code, kept readable
across a key rotation, and the migration that sealed the rows already there (and its reverse)."""

import json
from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from rest_framework.test import APIClient

from identity.models import User
from settings_app import runtime
from settings_app.models import SystemConfig
from settings_app.runtime import system_config_get
from settings_app.services.config import system_config_set, system_config_update
from tests import factories as f

SECRET = "sk-org-very-secret-4711"


def _stored(key: str) -> str:
    """The value column as the database holds it (text), past the model."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT CAST(value AS TEXT) FROM system_config WHERE key = %s", [key])
        row = cursor.fetchone()
    return row[0] if row else None


@pytest.fixture
def keys(settings):
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    return settings


@pytest.fixture(autouse=True)
def fresh_runtime_cache():
    runtime.config_changed()
    yield
    runtime.config_changed()


@pytest.mark.django_db
def test_every_writer_stores_a_sensitive_value_encrypted_and_code_reads_it_in_clear(keys):
    staff = f.UserFactory(is_staff=True, role=User.Role.OWNER)
    SystemConfig.objects.create(key="direct", value=SECRET, is_sensitive=True)
    system_config_set(key="service", value={"token": SECRET}, is_sensitive=True)
    call_command("config", "set", "command", json.dumps(SECRET), "--sensitive", stdout=StringIO())
    client = APIClient()
    client.force_authenticate(staff)
    created = client.post(
        "/api/v1/system-config", {"key": "api", "value": [SECRET], "is_sensitive": True}, format="json"
    )
    assert created.status_code == 201, created.content

    for key in ("direct", "service", "command", "api"):
        stored = _stored(key)
        assert SECRET not in stored and "$fernet" in stored, (key, stored)
    assert SystemConfig.objects.get(key="direct").value == SECRET
    assert system_config_get("service", type=dict) == {"token": SECRET}
    assert system_config_get("api", type=list) == [SECRET]


@pytest.mark.django_db
def test_non_sensitive_values_stay_in_clear(keys):
    SystemConfig.objects.create(key="billing.grace_days", value=7)
    assert json.loads(_stored("billing.grace_days")) == 7


@pytest.mark.django_db
def test_marking_an_entry_sensitive_encrypts_its_value_and_unmarking_stores_it_in_clear(keys):
    config = SystemConfig.objects.create(key="smtp.password", value=SECRET)
    assert SECRET in _stored("smtp.password")
    system_config_update(config=config, actor=None, is_sensitive=True)  # the value itself is kept
    assert SECRET not in _stored("smtp.password")
    assert SystemConfig.objects.get(key="smtp.password").value == SECRET
    system_config_update(config=config, actor=None, is_sensitive=False, value="now-public")
    assert json.loads(_stored("smtp.password")) == "now-public"


@pytest.mark.django_db
def test_a_description_change_through_the_api_keeps_the_value_encrypted(keys):
    staff = f.UserFactory(is_staff=True, role=User.Role.OWNER)
    SystemConfig.objects.create(key="ai.openai.org", value=SECRET, is_sensitive=True)
    client = APIClient()
    client.force_authenticate(staff)
    response = client.put(
        "/api/v1/system-config/ai.openai.org", {"description": "Org id", "is_sensitive": True}, format="json"
    )
    assert response.status_code == 200
    assert SECRET not in _stored("ai.openai.org")
    assert SystemConfig.objects.get(key="ai.openai.org").value == SECRET


@pytest.mark.django_db
def test_values_stay_readable_across_a_key_rotation_and_reencrypt_moves_them(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [old]
    SystemConfig.objects.create(key="smtp.password", value=SECRET, is_sensitive=True)
    settings.FIELD_ENCRYPTION_KEYS = [new, old]
    assert SystemConfig.objects.get(key="smtp.password").value == SECRET
    out = StringIO()
    call_command("config", "reencrypt", stdout=out)
    assert "1 sensitive values re-encrypted" in out.getvalue()
    settings.FIELD_ENCRYPTION_KEYS = [new]  # the old key is gone
    assert SystemConfig.objects.get(key="smtp.password").value == SECRET


@pytest.mark.django_db
def test_an_unreadable_value_reads_as_unset_without_hiding_the_others_and_is_not_overwritten(settings):
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    SystemConfig.objects.create(key="lost.secret", value=SECRET, is_sensitive=True)
    SystemConfig.objects.create(key="billing.grace_days", value=7)
    sealed = _stored("lost.secret")
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]  # the key was lost
    runtime.config_changed()
    assert system_config_get("billing.grace_days", type=int) == 7
    assert system_config_get("lost.secret", "fallback") == "fallback"
    config = SystemConfig.objects.get(key="lost.secret")
    system_config_update(config=config, actor=None, description="edited", is_sensitive=True)
    assert _stored("lost.secret") == sealed  # the ciphertext survives, for when the key comes back


@pytest.mark.django_db(transaction=True)
def test_the_migration_encrypts_existing_sensitive_rows_and_reverses(keys):
    executor = MigrationExecutor(connection)
    before, after = [("settings_app", "0001_initial")], [("settings_app", "0002_system_config_encrypt_sensitive")]
    executor.migrate(before)
    try:
        old_apps = executor.loader.project_state(before).apps
        old_config = old_apps.get_model("settings_app", "SystemConfig")
        old_config.objects.create(key="legacy.secret", value={"password": SECRET}, is_sensitive=True)
        old_config.objects.create(key="legacy.plain", value="visible", is_sensitive=False)
        old_config.objects.create(key="legacy.null", value=None, is_sensitive=True)

        executor = MigrationExecutor(connection)
        executor.migrate(after)
        assert SECRET not in _stored("legacy.secret") and "$fernet" in _stored("legacy.secret")
        assert json.loads(_stored("legacy.plain")) == "visible"
        assert SystemConfig.objects.get(key="legacy.secret").value == {"password": SECRET}
        assert SystemConfig.objects.get(key="legacy.null").value is None

        executor = MigrationExecutor(connection)
        executor.migrate(before)
        assert json.loads(_stored("legacy.secret")) == {"password": SECRET}
        assert json.loads(_stored("legacy.plain")) == "visible"
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
