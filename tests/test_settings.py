"""Settings: the embedded default needs nothing, production refuses unsafe configuration."""

import os
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet
from django.conf import settings
from django.core.cache import cache

from ipcontrol.certificates import signing_key_generate

ROOT = Path(__file__).resolve().parent.parent
PRINT_SETTINGS = (
    "import django; django.setup(); from django.conf import settings as s; "
    "print(s.DATABASES['default']['ENGINE'], s.CELERY_BROKER_URL, s.CACHES['default']['BACKEND'])"
)
_CLEAN_ENV = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "SECRET_KEY"}}


def _python(code, **env):
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**_CLEAN_ENV, "CELAEST_ENV_FILE": "/nonexistent", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_embedded_default_uses_sqlite_and_filesystem_broker(tmp_path):
    result = _python(PRINT_SETTINGS, DJANGO_SETTINGS_MODULE="celaest.settings", CELAEST_VAR_DIR=str(tmp_path))
    assert result.returncode == 0, result.stderr
    engine, broker, cache_backend = result.stdout.split()
    assert engine == "django.db.backends.sqlite3"
    assert broker == "filesystem://"
    assert cache_backend.endswith("FileBasedCache")


def test_redis_url_switches_broker_and_cache():
    result = _python(PRINT_SETTINGS, DJANGO_SETTINGS_MODULE="celaest.settings", REDIS_URL="redis://127.0.0.1:1/0")
    assert result.returncode == 0, result.stderr
    _, broker, cache_backend = result.stdout.split()
    assert broker == "redis://127.0.0.1:1/0"
    assert cache_backend.endswith("RedisCache")


def test_production_refuses_to_start_without_secret_key():
    result = _python(PRINT_SETTINGS, DJANGO_SETTINGS_MODULE="celaest.settings.production", ALLOWED_HOSTS="x.example")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_production_refuses_to_start_without_allowed_hosts():
    result = _python(
        PRINT_SETTINGS, DJANGO_SETTINGS_MODULE="celaest.settings.production", SECRET_KEY="k" * 64, ALLOWED_HOSTS=""
    )
    assert result.returncode != 0
    assert "ALLOWED_HOSTS must list" in result.stderr


def _production(**overrides):
    """Print the settings under production settings with a complete configuration, changed by
    ``overrides``."""
    env = {
        "DJANGO_SETTINGS_MODULE": "celaest.settings.production",
        "SECRET_KEY": "k" * 64,
        "ALLOWED_HOSTS": "celaest.example.com",
        "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "LICENSE_SIGNING_KEYS": signing_key_generate(),
        "EMAIL_URL": "smtp+tls://billing:secret@smtp.example.com:587",
    }
    return _python(PRINT_SETTINGS, **{**env, **overrides})


def test_production_refuses_to_start_without_license_signing_keys():
    result = _production(LICENSE_SIGNING_KEYS="")
    assert result.returncode != 0
    assert "LICENSE_SIGNING_KEYS must hold" in result.stderr


def test_production_refuses_to_start_without_an_email_server():
    result = _production(EMAIL_URL="")
    assert result.returncode != 0
    assert "EMAIL_URL must name" in result.stderr


def test_production_starts_with_real_configuration():
    result = _production()
    assert result.returncode == 0, result.stderr


def test_the_suite_runs_on_real_redis():
    assert settings.CACHES["default"]["BACKEND"].endswith("RedisCache")
    cache.set("celaest:test", 41)
    assert cache.incr("celaest:test") == 42


def test_every_setting_read_from_the_environment_is_documented_in_env_example():
    import re

    read = set()
    for module in (ROOT / "celaest" / "settings").glob("*.py"):
        read |= set(re.findall(r'\benv(?:\.\w+)?\(\s*"([A-Z][A-Z0-9_]+)"', module.read_text()))
    documented = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.MULTILINE))
    assert "DATABASE_URL" in read and "AI_TASK_REQUEUE_SECONDS" in read  # the pattern finds them
    assert sorted(read - documented) == []
