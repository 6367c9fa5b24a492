"""Sensitive ``system_config`` values encrypted at rest: the field that seals them on save, and
the existing sensitive rows sealed (reversed: opened again, in clear).

The row format is copied here rather than imported, so this migration keeps meaning what it means
if the model's helpers change: ``{"$fernet": "<Fernet token of the JSON text>"}``, keys from
``FIELD_ENCRYPTION_KEYS`` through ``celaest.crypto``. Rows are written with ``update()``, which
skips the field's own sealing (that would seal them twice).
"""

import json

from django.db import migrations

import settings_app.models
from celaest import crypto

SEALED_KEY = "$fernet"


def _is_sealed(stored) -> bool:
    if not (isinstance(stored, dict) and set(stored) == {SEALED_KEY} and isinstance(stored[SEALED_KEY], str)):
        return False
    try:
        crypto.decrypt(stored[SEALED_KEY])
    except crypto.DecryptionError:
        return False  # a clear value that merely looks sealed
    return True


def seal_sensitive_values(apps, schema_editor):
    SystemConfig = apps.get_model("settings_app", "SystemConfig")
    for key, value in SystemConfig.objects.filter(is_sensitive=True).values_list("key", "value"):
        if value is not None and not _is_sealed(value):
            sealed = {SEALED_KEY: crypto.encrypt(json.dumps(value))}
            SystemConfig.objects.filter(key=key).update(value=sealed)


def open_sensitive_values(apps, schema_editor):
    SystemConfig = apps.get_model("settings_app", "SystemConfig")
    for key, value in SystemConfig.objects.filter(is_sensitive=True).values_list("key", "value"):
        if _is_sealed(value):
            SystemConfig.objects.filter(key=key).update(value=json.loads(crypto.decrypt(value[SEALED_KEY])))


class Migration(migrations.Migration):
    dependencies = [
        ("settings_app", "0001_initial"),
    ]

    operations = [
        # The column stays jsonb: only Django's idea of the field changes (SQLite would otherwise
        # rebuild the table for nothing).
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="systemconfig",
                    name="value",
                    field=settings_app.models.SystemConfigValueField(blank=True, null=True),
                ),
            ],
        ),
        migrations.RunPython(seal_sensitive_values, open_sensitive_values, elidable=False),
    ]
