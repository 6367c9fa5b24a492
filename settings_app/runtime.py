"""What running code reads on every request: system config values and feature flags.

Both tables are small and read far more often than written, so each process keeps all rows in
memory (``celaest.readcache``). A generation in the shared cache (Redis) says when they changed:
a process checks it at most every ``CHECK_SECONDS`` and reloads on a new one; the process that
made the change reloads at once. Every write to the tables moves it after commit.

Percentage rollouts are stable per subject, as in Unleash: sha256 of ``"<flag key>:<subject id>"``
into 100 buckets, the same in every process and on every machine.
"""

import hashlib
import json
import logging
from decimal import Decimal, InvalidOperation

from celaest.readcache import ReadCache

logger = logging.getLogger(__name__)

CHECK_SECONDS = 2.0
_MISSING = object()


def _load_config() -> dict:
    # The models are imported when rows are loaded, not with the module: its pure parts
    # (flag_bucket) are imported without Django set up (the stable-bucket test does so in a bare
    # interpreter). No cycle hides here: the models import nothing of this module.
    from .models import SystemConfig

    return {row.key: row.value for row in SystemConfig.objects.all()}


def _load_flags() -> dict:
    from .models import FeatureFlag

    return {
        flag.flag_key: (flag.is_enabled, flag.target_type, flag.target_percentage, frozenset(map(str, flag.target_ids)))
        for flag in FeatureFlag.objects.all()
    }


# Watched by label: the models are not imported with this module (see ``_load_config``).
_config = ReadCache("system-config", check_seconds=CHECK_SECONDS).watch("settings_app.SystemConfig")
_flags = ReadCache("feature-flags", check_seconds=CHECK_SECONDS).watch("settings_app.FeatureFlag")


def _all_config() -> dict:
    return _config.get("all", _load_config)


def _all_flags() -> dict:
    return _flags.get("all", _load_flags)


def config_changed() -> None:
    _config.changed()


def flags_changed() -> None:
    _flags.changed()


# --- system config -----------------------------------------------------------------------------


def _coerce(value, cast):
    if cast is None or isinstance(value, cast) and not (cast is int and isinstance(value, bool)):
        return value
    if cast is bool:
        if isinstance(value, str) and value.strip().lower() in ("true", "1", "yes", "on", "false", "0", "no", "off"):
            return value.strip().lower() in ("true", "1", "yes", "on")
        if isinstance(value, int | float):
            return bool(value)
        raise ValueError(f"{value!r} is not a boolean")
    if cast is int:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError(f"{value!r} is not an integer")
        return int(value)
    if cast is Decimal:
        return Decimal(str(value))
    if cast in (list, dict):
        parsed = json.loads(value) if isinstance(value, str) else value
        if not isinstance(parsed, cast):
            raise ValueError(f"{value!r} is not a {cast.__name__}")
        return parsed
    return cast(value)


def system_config_get(key: str, default=None, type=None):  # noqa: A002 - the documented name
    """The value of setting ``key`` converted to ``type`` (int, float, bool, str, Decimal, list,
    dict), or ``default`` when it is missing or does not convert (logged)."""
    value = _all_config().get(key, _MISSING)
    if value is _MISSING or value is None:
        return default
    try:
        return _coerce(value, type)
    except (TypeError, ValueError, InvalidOperation):
        logger.warning("System config %s does not convert to %s; using the default.", key, type)
        return default


# --- feature flags -------------------------------------------------------------------------------


def flag_bucket(flag_key: str, subject_id) -> int:
    """The subject's bucket (0-99) for this flag: stable, and independent between flags."""
    digest = hashlib.sha256(f"{flag_key}:{subject_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100


def _evaluate(flag_key: str, flag: tuple, user) -> bool:
    is_enabled, target_type, percentage, target_ids = flag
    if not is_enabled:
        return False
    if target_type == "all":
        return True
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    if target_type == "percentage":
        return flag_bucket(flag_key, user.pk) < percentage
    if target_type == "organizations":
        return user.organization_id is not None and str(user.organization_id) in target_ids
    if target_type == "users":
        return str(user.pk) in target_ids
    return False


def flag_enabled(key: str, user=None) -> bool:
    """Whether flag ``key`` is on for ``user`` (an unknown flag is off)."""
    flag = _all_flags().get(key)
    return flag is not None and _evaluate(key, flag, user)


def flags_evaluated(user) -> dict[str, bool]:
    """Every flag, evaluated for ``user``."""
    return {key: _evaluate(key, flag, user) for key, flag in sorted(_all_flags().items())}
