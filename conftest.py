"""Project-wide pytest fixtures."""

import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def _clear_cache():
    """Each test starts with an empty cache (it lives in the real Redis of the test run), and
    without the process copies of system config and flags an earlier, rolled-back test loaded."""
    from settings_app.runtime import forget_process_copies

    cache.clear()
    forget_process_copies()
    yield
