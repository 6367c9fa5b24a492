"""Prompt versions, safe rendering and model choice."""

import pytest
from rest_framework.test import APIClient

from aimesh.models import Prompt, PromptFallbackModel
from aimesh.services import models_for, prompt_activate, prompt_get, prompt_new_version, prompt_render
from aimesh.testing import ai_model
from audit.models import AuditLog
from celaest.errors import InvalidInput
from tests import factories as f

pytestmark = pytest.mark.django_db


def _prompt(**fields):
    defaults = {
        "slug": "summarize",
        "name": "Summarize",
        "system_prompt": "You summarize {{ kind }} texts.",
        "user_template": "Summarize: {{ text }}",
        "variables": [{"name": "text", "required": True}, {"name": "kind", "required": False, "default": "support"}],
        "version": 1,
        "is_active": True,
    }
    defaults.update(fields)
    return Prompt.objects.create(**defaults)


def test_variables_are_substituted_once_and_never_evaluated():
    prompt = _prompt()
    rendered = prompt_render(prompt=prompt, variables={"text": "{{ kind }} and {{ text.__class__ }} {% x %}"})
    assert rendered.user == "Summarize: {{ kind }} and {{ text.__class__ }} {% x %}"
    assert rendered.system == "You summarize support texts."


@pytest.mark.parametrize(
    ("variables", "code"),
    [
        ({}, "missing_variables"),
        ({"text": "a", "other": "b"}, "unknown_variables"),
        ({"text": [1]}, "invalid_variables"),
    ],
)
def test_bad_variables_are_refused(variables, code):
    with pytest.raises(InvalidInput) as raised:
        prompt_render(prompt=_prompt(), variables=variables)
    assert raised.value.code == code and raised.value.status_code == 400


def test_a_single_variable_prompt_takes_a_plain_input_text():
    prompt = _prompt(variables=[{"name": "text"}], system_prompt="")
    assert prompt_render(prompt=prompt, input_text="hello").user == "Summarize: hello"


def test_new_version_copies_the_previous_and_activation_moves_the_flag():
    model = ai_model()
    first = _prompt(preferred_model=model)
    PromptFallbackModel.objects.create(prompt=first, model=ai_model("gpt-4o", is_default=False), position=1)
    second = prompt_new_version(prompt=first, changes={"user_template": "TL;DR: {{ text }}"})
    assert (second.version, second.parent, second.is_active) == (2, first, False)
    assert second.system_prompt == first.system_prompt and second.preferred_model == model
    assert list(second.fallback_models.values_list("model_id", flat=True)) == ["gpt-4o"]
    assert prompt_get(slug="summarize") == first
    prompt_activate(prompt=second)
    assert prompt_get(slug="summarize") == second
    assert prompt_get(slug="summarize", version=1) == first
    assert Prompt.objects.filter(slug="summarize", is_active=True).count() == 1
    assert AuditLog.objects.filter(action="prompt.activated").exists()


def test_staff_api_creates_and_activates_versions():
    first = _prompt()
    staff = APIClient()
    staff.force_authenticate(f.StaffUserFactory())
    response = staff.post(f"/api/v1/prompts/{first.pk}/new-version")
    assert response.status_code == 201 and response.json()["version"] == 2
    new_id = response.json()["id"]
    assert staff.post(f"/api/v1/prompts/{new_id}/activate").json()["is_active"] is True
    first.refresh_from_db()
    assert not first.is_active
    customer = APIClient()
    customer.force_authenticate(f.UserFactory())
    assert customer.post(f"/api/v1/prompts/{new_id}/new-version").status_code in (403, 404)


def test_model_choice_preferred_default_capability_and_size():
    small = ai_model("fake-small", max_tokens_input=100, capabilities=["chat"])
    large = ai_model("fake-large", max_tokens_input=100_000, capabilities=["chat", "json"], is_default=False)
    prompt = _prompt()
    assert models_for(prompt=prompt, requested=None, json_mode=False, estimated_tokens=10) == [small]
    # JSON needs the capability the small default lacks: no default offers it
    with pytest.raises(InvalidInput) as raised:
        models_for(prompt=prompt, requested=None, json_mode=True, estimated_tokens=10)
    assert raised.value.code == "no_model_available"
    # Too long for the default: the larger model takes it
    assert models_for(prompt=prompt, requested=None, json_mode=False, estimated_tokens=5000) == [large]
    with pytest.raises(InvalidInput) as raised:
        models_for(prompt=prompt, requested=None, json_mode=False, estimated_tokens=500_000)
    assert raised.value.code == "input_too_large"
    prompt.preferred_model = large
    assert models_for(prompt=prompt, requested=None, json_mode=True, estimated_tokens=10) == [large]
