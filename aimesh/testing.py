"""Test fixtures for AI work: the local fake provider and a pool of keys pointing at it.

Imported by the conftest of the apps that run AI work (aimesh, operations), so the official SDKs
are exercised end to end against a real HTTP server speaking the providers' protocols.
"""

from decimal import Decimal

import pytest

from aimesh.fake_provider import FakeProvider
from aimesh.models import AIApiKey, AIModel, Provider
from celaest import crypto


@pytest.fixture(scope="session")
def fake_provider():
    provider = FakeProvider(hang_seconds=5).start()
    yield provider
    provider.stop()


@pytest.fixture
def provider(fake_provider):
    """The session's fake provider with per-test state reset."""
    fake_provider.httpd.overrides.clear()
    fake_provider.hits.clear()
    fake_provider.set_latency(0)
    fake_provider.set_stream_interval(0)
    fake_provider.httpd.cut_streams = 0
    yield fake_provider
    fake_provider.httpd.overrides.clear()
    fake_provider.set_stream_interval(0)


def pool_key(provider: FakeProvider, secret: str, *, name: str | None = None, vendor=Provider.OPENAI, **fields):
    """A pooled key whose secret is ``secret`` (which may carry a failure mode, e.g. ``sk-fail-429``).
    Its budget is large unless the test sets ``rate_limit_rpm``: keys spend it evenly (one
    second's worth at once), and a test's quick calls are not about pacing."""
    fields.setdefault("rate_limit_rpm", 600_000)
    return AIApiKey.objects.create(
        provider=vendor,
        key_name=name or secret,
        key_encrypted=crypto.encrypt(secret),
        key_hint=secret[-4:],
        base_url=provider.url,
        **fields,
    )


def ai_model(model_id="gpt-4o-mini", *, provider=Provider.OPENAI, **fields) -> AIModel:
    defaults = {
        "display_name": model_id,
        "capabilities": ["chat", "json"],
        "cost_per_1k_input": Decimal("0.150000"),
        "cost_per_1k_output": Decimal("0.600000"),
        "cost_per_1k_cached_input": Decimal("0.075000"),
        "is_default": True,
    }
    defaults.update(fields)
    return AIModel.objects.create(provider=provider, model_id=model_id, **defaults)
