"""A Celery worker keeps its database connection between tasks (Celery's Django fixup would open
a new one for every task), closes it after a task that failed, and replaces one the database has
closed before the next task starts."""

import psycopg
import pytest
from celery import states
from celery.fixups.django import DjangoWorkerFixup
from celery.signals import task_postrun, task_prerun
from django.conf import settings
from django.db import connection

from celaest.celery import app, worker_heartbeat

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def kept_connection(monkeypatch):
    """A connection opened with a CONN_MAX_AGE, as in production (the test settings use 0)."""
    connection.close()
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 60)
    connection.ensure_connection()
    yield connection.connection
    connection.close()


def _run_task(state=states.SUCCESS):
    task_prerun.send(sender=worker_heartbeat, task_id="t", task=worker_heartbeat, args=(), kwargs={})
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    task_postrun.send(
        sender=worker_heartbeat, task_id="t", task=worker_heartbeat, args=(), kwargs={}, retval=None, state=state
    )


def test_the_fixup_is_told_to_reuse_connections():
    assert settings.CELERY_DB_REUSE_MAX >= 100
    assert DjangoWorkerFixup(app).db_reuse_max == settings.CELERY_DB_REUSE_MAX


def test_successful_tasks_share_one_connection(kept_connection):
    _run_task()
    _run_task()
    assert connection.connection is kept_connection


def test_a_failed_task_closes_its_connection(kept_connection):
    _run_task(state=states.FAILURE)
    assert connection.connection is None
    _run_task()
    assert connection.connection is not None and connection.connection is not kept_connection


def test_a_connection_the_database_closed_is_replaced_before_the_task(kept_connection):
    pid = kept_connection.info.backend_pid
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**params, autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])
    _run_task()  # would fail with "terminating connection" on the old connection
    assert connection.connection is not kept_connection


def test_a_connection_past_its_age_is_replaced(kept_connection):
    connection.close_at = 0  # as if CONN_MAX_AGE had passed
    _run_task()
    assert connection.connection is not None and connection.connection is not kept_connection
