"""The audit actions are one list (``AuditLog.Action``): every action the code records is in it,
so the API schema's ``ActionEnum`` (read from it) names every action a row can carry."""

import ast
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from audit.models import AuditLog
from audit.services import audit_record

ROOT = Path(__file__).resolve().parents[2]
_RECORDERS = {"audit_record", "audit_model_write", "change_record", "create", "AuditLogFactory", "AuditLog"}


def _source_files():
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT).parts
        if parts[0].startswith(".") or parts[0] in {"var", "node_modules"} or {"migrations", "tests"} & set(parts):
            continue
        yield path


def _called_name(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def _actions_named_in_code():
    """``(where, action)`` for every ``action=`` given to an audit writer: a string, or an
    ``AuditLog.Action.<NAME>`` (resolved, so a missing member is reported too)."""
    found = []
    for path in _source_files():
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or _called_name(node) not in _RECORDERS:
                continue
            for keyword in node.keywords:
                if keyword.arg != "action":
                    continue
                where = f"{path.relative_to(ROOT)}:{node.lineno}"
                value = keyword.value
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    found.append((where, value.value))
                elif isinstance(value, ast.Attribute) and ast.unparse(value.value) == "AuditLog.Action":
                    member = getattr(AuditLog.Action, value.attr, None)
                    found.append((where, member.value if member is not None else f"AuditLog.Action.{value.attr}"))
    return found


def test_the_scan_sees_the_services_that_record_actions():
    where = {w.split(":")[0] for w, _ in _actions_named_in_code()}
    assert {
        "operations/services.py",
        "aimesh/services.py",
        "billing/services/payments.py",
        "identity/services.py",
    } <= where


def test_every_action_the_code_records_is_in_the_one_list():
    unknown = [(where, action) for where, action in _actions_named_in_code() if action not in AuditLog.Action.values]
    assert unknown == []


@pytest.mark.django_db
def test_an_action_outside_the_list_is_refused_before_it_is_written():
    with pytest.raises(ValueError, match="not an audit action"):
        audit_record(action="batch.exploded", resource_type="operations.taskbatch")
    assert not AuditLog.objects.exists()


@pytest.mark.django_db
def test_the_schema_action_enum_is_the_one_list():
    schema = APIClient().get("/api/schema/?format=json").json()
    assert set(schema["components"]["schemas"]["ActionEnum"]["enum"]) == set(AuditLog.Action.values)
