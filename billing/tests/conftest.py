"""Fixtures of billing's tests: Stripe played by a local server speaking its API, and Celery
tasks run in the process (the e-mails queued after commit)."""

import pytest

from celaest.celery import app as celery_app

from .stripe_server import FakeStripe

STRIPE_TEST_KEY = "sk_test_local_celaest"
STRIPE_TEST_WEBHOOK_SECRET = "whsec_local_celaest_secret"


@pytest.fixture
def stripe_api(settings):
    with FakeStripe(STRIPE_TEST_KEY) as server:
        settings.STRIPE_API_KEY = STRIPE_TEST_KEY
        settings.STRIPE_API_BASE = server.url
        settings.STRIPE_WEBHOOK_SECRET = STRIPE_TEST_WEBHOOK_SECRET
        yield server


@pytest.fixture
def eager_tasks():
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False
