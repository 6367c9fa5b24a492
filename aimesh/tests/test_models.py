import pytest

from aimesh.models import Provider
from tests.db import raises_integrity_error
from tests.factories import AIApiKeyFactory, AIModelFactory, PromptFactory

pytestmark = pytest.mark.django_db


def test_model_is_unique_per_provider():
    AIModelFactory(provider=Provider.OPENAI, model_id="gpt-x")
    AIModelFactory(provider=Provider.GROQ, model_id="gpt-x")
    with raises_integrity_error():
        AIModelFactory(provider=Provider.OPENAI, model_id="gpt-x")


def test_model_prices_cannot_be_negative():
    with raises_integrity_error():
        AIModelFactory(cost_per_1k_output=-1)


def test_pool_counters_cannot_be_negative():
    with raises_integrity_error():
        AIApiKeyFactory(usage_count=-1)


def test_prompt_slug_and_version_are_unique():
    PromptFactory(slug="summary", version=1, is_active=False)
    with raises_integrity_error():
        PromptFactory(slug="summary", version=1, is_active=False)


def test_only_one_active_version_per_prompt_slug():
    v1 = PromptFactory(slug="summary", version=1, is_active=True)
    PromptFactory(slug="summary", version=2, is_active=False, parent=v1)
    with raises_integrity_error():
        PromptFactory(slug="summary", version=3, is_active=True, parent=v1)


def test_prompt_temperature_range():
    with raises_integrity_error():
        PromptFactory(temperature="2.50")
