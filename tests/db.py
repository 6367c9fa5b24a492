"""Helpers for tests that assert what the database itself enforces."""

from contextlib import contextmanager

import pytest
from django.db import IntegrityError, connection, transaction


@contextmanager
def raises_integrity_error():
    """Assert that the block violates a constraint, checked immediately (FKs are deferred on
    PostgreSQL, so they are made immediate for the block) and rolled back to a savepoint."""
    with pytest.raises(IntegrityError):
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            yield
