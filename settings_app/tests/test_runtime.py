"""System config reads and feature flags: typed, cached per process, invalidated on change;
percentage rollouts stable per subject and across processes; the config command; GET /flags."""

import json
import subprocess
import sys
import uuid
from decimal import Decimal
from io import StringIO

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from audit.models import AuditLog
from identity.models import User
from settings_app import runtime
from settings_app.models import FeatureFlag, SystemConfig
from settings_app.runtime import flag_bucket, flag_enabled, system_config_get
from settings_app.services.api_keys import api_key_create
from tests import factories as f

pytestmark = pytest.mark.django_db


# --- system config -----------------------------------------------------------------------------


def test_typed_get():
    for key, value in {"n": "7", "b": "true", "d": "1.10", "l": [1, 2], "s": 5, "bad": "x"}.items():
        SystemConfig.objects.create(key=key, value=value)
    assert system_config_get("n", type=int) == 7
    assert system_config_get("b", type=bool) is True
    assert system_config_get("d", type=Decimal) == Decimal("1.10")
    assert system_config_get("l", type=list) == [1, 2]
    assert system_config_get("s", type=str) == "5"
    assert system_config_get("bad", 3, type=int) == 3  # does not convert: the default
    assert system_config_get("missing", "dflt") == "dflt"


def test_reads_are_cached_and_a_change_is_seen_at_once(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):  # committed, as a real change is
        config = SystemConfig.objects.create(key="billing.grace_days", value=7)
    assert system_config_get("billing.grace_days", type=int) == 7
    with CaptureQueriesContext(connection) as queries:
        for _ in range(20):
            system_config_get("billing.grace_days", type=int)
    assert len(queries) == 0
    with django_capture_on_commit_callbacks(execute=True):
        config.value = 9
        config.save()
    assert system_config_get("billing.grace_days", type=int) == 9


def test_another_process_sees_the_change_through_the_shared_version(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        SystemConfig.objects.create(key="limit", value=1)
    assert system_config_get("limit") == 1
    # Another process changes the row and bumps the shared version; this one has not reloaded.
    with connection.cursor() as cursor:  # raw SQL: this process hears nothing of it
        cursor.execute(f"UPDATE {SystemConfig._meta.db_table} SET value = '2' WHERE key = 'limit'")  # noqa: S608
    assert system_config_get("limit") == 1  # cached
    cache.set(runtime._config.generation_key, "another")
    runtime._config._checked_at = 0  # the check interval has passed
    assert system_config_get("limit") == 2


def test_config_command_get_and_set_with_masking():
    out = StringIO()
    call_command("config", "set", "billing.grace_days", "7", stdout=out)
    assert out.getvalue().strip() == "billing.grace_days = 7"
    call_command("config", "set", "openai.org", '"org-secret"', "--sensitive", stdout=StringIO())
    out = StringIO()
    call_command("config", "get", "openai.org", stdout=out)
    assert "org-secret" not in out.getvalue() and json.loads(out.getvalue()) == "••••••"
    assert SystemConfig.objects.get(key="openai.org").value == "org-secret"
    out = StringIO()
    call_command("config", "get", "billing.grace_days", stdout=out)
    assert json.loads(out.getvalue()) == 7
    rows = AuditLog.objects.filter(resource_id="openai.org")
    assert rows.count() == 1 and "org-secret" not in str(rows[0].changes) and rows[0].source == "command"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["get", "nope"], "No setting"),
        (["set", "k", "not json"], "must be JSON"),
        (["set", "k", '"a\\u0000b"'], "NUL"),
        (["set", "has space", "1"], "Use letters, digits"),  # the key rule the API applies too
        (["set", ".starts-with-dot", "1"], "Use letters, digits"),
    ],
)
def test_config_command_errors(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("config", *args, stdout=StringIO())


def test_config_command_exits_non_zero_on_bad_arguments():
    deep = "[" * 5000 + "]" * 5000
    bad = (
        ["config"],
        ["config", "get"],
        ["config", "frob", "x"],
        ["config", "set", "k", "{oops"],
        ["config", "set", "k", deep],
    )
    for args in bad:
        result = subprocess.run(
            [sys.executable, "manage.py", *args], capture_output=True, text=True, timeout=60, check=False
        )
        assert result.returncode != 0, args
        assert "Traceback" not in result.stderr


# --- feature flags ------------------------------------------------------------------------------


def test_flag_targets():
    org = f.OrganizationFactory()
    user = f.UserFactory(organization=org)
    other = f.UserFactory()
    FeatureFlag.objects.create(flag_key="everyone", is_enabled=True, target_type="all")
    FeatureFlag.objects.create(flag_key="off", is_enabled=False, target_type="all")
    FeatureFlag.objects.create(flag_key="orgs", is_enabled=True, target_type="organizations", target_ids=[str(org.pk)])
    FeatureFlag.objects.create(flag_key="users", is_enabled=True, target_type="users", target_ids=[str(other.pk)])
    FeatureFlag.objects.create(flag_key="half", is_enabled=True, target_type="percentage", target_percentage=100)
    assert flag_enabled("everyone", user) and not flag_enabled("off", user) and not flag_enabled("unknown", user)
    assert flag_enabled("orgs", user) and not flag_enabled("orgs", other)
    assert flag_enabled("users", other) and not flag_enabled("users", user)
    assert flag_enabled("half", user) and not flag_enabled("half", None)


def test_percentage_rollout_is_within_two_points_of_its_target():
    for target in (10, 25, 50):
        subjects = [uuid.UUID(int=n) for n in range(10_000)]
        enabled = sum(flag_bucket("new-checkout", subject) < target for subject in subjects)
        assert abs(enabled / 10_000 * 100 - target) <= 2, (target, enabled)


def test_buckets_are_the_same_in_another_process():
    subjects = [str(uuid.UUID(int=n * 7919)) for n in range(500)]
    here = [flag_bucket("new-checkout", subject) for subject in subjects]
    code = (
        "import json, sys; from settings_app.runtime import flag_bucket; "
        "print(json.dumps([flag_bucket('new-checkout', s) for s in json.loads(sys.stdin.read())]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps(subjects),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={"PYTHONHASHSEED": "12345", "PATH": "/usr/bin:/bin"},
    )
    assert json.loads(result.stdout) == here


def test_flags_endpoint_returns_my_evaluated_flags(django_capture_on_commit_callbacks):
    org = f.OrganizationFactory()
    viewer = f.UserFactory(organization=org, role=User.Role.VIEWER)
    FeatureFlag.objects.create(flag_key="beta", is_enabled=True, target_type="organizations", target_ids=[str(org.pk)])
    FeatureFlag.objects.create(flag_key="dark", is_enabled=False, target_type="all")
    client = APIClient()
    client.force_authenticate(viewer)
    response = client.get("/api/v1/flags")
    assert response.status_code == 200 and response.json() == {"flags": {"beta": True, "dark": False}}
    assert client.get("/api/v1/flags/").json() == response.json()
    stranger = APIClient()
    stranger.force_authenticate(f.UserFactory())
    assert stranger.get("/api/v1/flags").json() == {"flags": {"beta": False, "dark": False}}

    with django_capture_on_commit_callbacks(execute=True):
        FeatureFlag.objects.filter(flag_key="dark").update(is_enabled=True)
        FeatureFlag.objects.get(flag_key="dark").save()  # a save invalidates every process's copy
    assert client.get("/api/v1/flags").json()["flags"]["dark"] is True


def test_flags_endpoint_needs_authentication_and_a_key_scope():
    owner = f.UserFactory(role=User.Role.OWNER)
    assert APIClient().get("/api/v1/flags").status_code == 401
    for scopes, expected in ((["flags:read"], 200), (["sessions:read"], 403)):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_create(user=owner, name='k', scopes=scopes).raw_key}")
        assert client.get("/api/v1/flags").status_code == expected
