"""Project-wide pytest fixtures."""

import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def _clear_cache():
    """Each test starts with an empty cache (it lives in the real Redis of the test run), and
    without the process copies (system config, flags, API keys, ...) an earlier, rolled-back test loaded."""
    from celaest.readcache import forget_process_copies

    cache.clear()
    forget_process_copies()
    yield


@pytest.fixture
def owner():
    """The owner of an organization of their own (modules that need another set-up define theirs)."""
    from identity.models import User
    from tests.factories import UserFactory

    return UserFactory(role=User.Role.OWNER)


@pytest.fixture
def staff():
    """A platform staff member."""
    from tests.factories import StaffUserFactory

    return StaffUserFactory()
