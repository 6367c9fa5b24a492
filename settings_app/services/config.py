"""System config: settings staff create and change (sensitive ones sealed at rest), the one
rule for their keys, and re-sealing under the newest encryption key."""

import re

from django.db import transaction

from celaest.errors import Conflict, InvalidInput
from celaest.validation import json_problem
from identity.models import User
from settings_app.models import SystemConfig

#: "leave this field as it is" for updates where None is a meaningful value
KEEP = object()


@transaction.atomic
def system_config_create(
    *, key: str, actor: User, value=None, description: str = "", is_sensitive: bool = False
) -> SystemConfig:
    if SystemConfig.objects.filter(key=key).exists():
        raise Conflict(f"A setting named {key!r} already exists.", code="config_exists", details={"key": [key]})
    return SystemConfig.objects.create(
        key=key, value=value, description=description, is_sensitive=is_sensitive, updated_by=actor
    )


_CONFIG_KEY_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:-]*$")
CONFIG_KEY_RULE = "Use letters, digits, '_', '.', ':' and '-' (e.g. 'billing.grace_days')."


def config_key_is_valid(key: str) -> bool:
    """The one rule for system setting keys (API and ``config`` command alike)."""
    return bool(_CONFIG_KEY_RE.match(key))


@transaction.atomic
def system_config_set(
    *, key: str, value, actor: User | None = None, is_sensitive: bool | None = None, description: str | None = None
) -> tuple[SystemConfig, bool]:
    """Create or change setting ``key`` (the ``config set`` command). Returns (config, created)."""
    if not config_key_is_valid(key):
        raise InvalidInput(CONFIG_KEY_RULE, details={"key": [CONFIG_KEY_RULE]})
    if problem := json_problem(value):
        raise InvalidInput(problem, details={"value": [problem]})
    config = SystemConfig.objects.select_for_update().filter(key=key).first()
    if config is None:
        config = SystemConfig.objects.create(
            key=key, value=value, description=description or "", is_sensitive=bool(is_sensitive), updated_by=actor
        )
        return config, True
    return system_config_update(
        config=config, actor=actor, value=value, description=description, is_sensitive=is_sensitive
    ), False


@transaction.atomic
def system_config_update(
    *,
    config: SystemConfig,
    actor: User,
    value=KEEP,
    description: str | None = None,
    is_sensitive: bool | None = None,
) -> SystemConfig:
    """Change a setting. ``value=KEEP`` (the default) leaves the value as it is, so a client
    that never saw a sensitive value can still edit the description."""
    fields = ["updated_by"]
    config.updated_by = actor
    if value is not KEEP:
        config.value = value
        fields.append("value")
    if description is not None:
        config.description = description
        fields.append("description")
    if is_sensitive is not None:
        config.is_sensitive = is_sensitive
        fields.append("is_sensitive")
    config.save(update_fields=[*fields, "updated_at"])
    return config


def system_configs_reencrypt() -> int:
    """Open and seal again every sensitive setting (saving seals under the newest
    ``FIELD_ENCRYPTION_KEYS`` key); returns how many. A value no configured key opens stops it
    with nothing changed."""
    count = 0
    with transaction.atomic():
        for config in SystemConfig.objects.select_for_update().filter(is_sensitive=True):
            if getattr(config, "_unreadable_sealed_value", None) is not None:
                raise InvalidInput(f"{config.key} cannot be decrypted with FIELD_ENCRYPTION_KEYS; nothing was changed.")
            if config.value is not None:
                config.save(update_fields=["value"])  # updated_at stays: the value did not change
                count += 1
    return count
