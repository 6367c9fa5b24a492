"""The migrated schema matches the ERD (docs/erd.md, checked by tools/erd_check.py) on both
supported databases, and no migration is missing. Both live in the repository: a clone with
nothing beside it runs these."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
ERD_CHECK = ROOT / "tools" / "erd_check.py"


def _run(args, env_overrides):
    env = {**os.environ, **env_overrides}
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_the_check_names_every_table_of_the_erd_document():
    """The check's expectations and the design document stay one story."""
    import re
    import runpy

    tables = runpy.run_path(str(ERD_CHECK))["TABLES"]
    document = (ROOT / "docs" / "erd.md").read_text()
    assert len(tables) == 36
    assert [table for table in tables if not re.search(rf"\b{table}\b", document)] == []


def test_erd_check_passes_on_sqlite(tmp_path):
    env = {
        "DJANGO_SETTINGS_MODULE": "celaest.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'erd.sqlite3'}",
        "CELAEST_VAR_DIR": str(tmp_path),
        "REDIS_URL": "",
    }
    migrate = _run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], env)
    assert migrate.returncode == 0, migrate.stderr
    check = _run([sys.executable, str(ERD_CHECK)], env)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "all 36 ERD tables conform (sqlite)" in check.stdout


@pytest.mark.django_db
def test_erd_check_passes_on_postgresql():
    settings_dict = connection.settings_dict
    url = "postgres://{USER}@{HOST}:{PORT}/{NAME}".format(**settings_dict)
    if settings_dict.get("PASSWORD"):
        url = "postgres://{USER}:{PASSWORD}@{HOST}:{PORT}/{NAME}".format(**settings_dict)
    check = _run([sys.executable, str(ERD_CHECK), "--settings", "celaest.settings.test"], {"DATABASE_URL": url})
    assert check.returncode == 0, check.stdout + check.stderr
    assert "all 36 ERD tables conform (postgresql)" in check.stdout


@pytest.mark.django_db
def test_no_model_change_lacks_a_migration():
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)
