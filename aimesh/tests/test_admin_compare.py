"""The admin's compare page of prompt versions: fields side by side with the changed ones marked,
a line diff of the texts, the version picker, refusals (another prompt, unknown IDs, missing
permissions) and the button that activates the version looked at."""

import uuid
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from aimesh.models import Prompt, PromptFallbackModel
from aimesh.services import prompt_new_version
from tests import factories

pytestmark = pytest.mark.django_db


def compare_url(prompt, with_prompt=None):
    url = reverse("admin:aimesh_prompt_compare", args=[prompt.pk])
    return f"{url}?with={with_prompt.pk}" if with_prompt is not None else url


def activate_url(prompt):
    return reverse("admin:aimesh_prompt_activate_version", args=[prompt.pk])


def page_messages(response):
    return [str(message) for message in response.context["messages"]]


def changed_fields(response):
    return {field.name for field in response.context["fields"] if field.changed}


@pytest.fixture
def staff_client(client):
    client.force_login(factories.StaffUserFactory())
    return client


def staff_member_client(client, *permissions):
    """A client logged in as staff (not superuser) holding only ``permissions`` of prompts."""
    user = factories.UserFactory(organization=None, is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="aimesh", codename__in=permissions))
    client.force_login(user)
    return client


@pytest.fixture
def versions():
    """v1 (active) and v2, copied from v1 with a reworded second line and a lower temperature."""
    first = factories.PromptFactory(
        slug="summarize", system_prompt="You are a helpful assistant.\nAnswer briefly.\nUse plain words."
    )
    second = prompt_new_version(
        prompt=first,
        changes={
            "system_prompt": "You are a helpful assistant.\nAnswer in one sentence.\nUse plain words.",
            "temperature": Decimal("0.20"),
        },
    )
    return first, second


def test_changed_fields_are_highlighted_and_texts_diffed(staff_client, versions):
    first, second = versions
    response = staff_client.get(compare_url(second, first))
    assert response.status_code == 200
    assert response.context["original"] == second
    assert response.context["other"] == first
    assert changed_fields(response) == {"system_prompt", "temperature", "is_active"}
    html = response.text
    assert '<tr class="changed" data-field="system_prompt">' in html
    assert '<tr class="changed" data-field="temperature">' in html
    assert '<tr class="same" data-field="user_template">' in html
    # The diff reads from the older version to the newer one, line by line.
    assert '<div class="diff-removed">-Answer briefly.</div>' in html
    assert '<div class="diff-added">+Answer in one sentence.</div>' in html
    assert '<div class="diff-context"> Use plain words.</div>' in html
    assert [diff["label"] for diff in response.context["diffs"]] == ["system prompt"]

    # Looked at from v1, the diff still reads from v1 to v2.
    reverse_page = staff_client.get(compare_url(first, second))
    assert '<div class="diff-added">+Answer in one sentence.</div>' in reverse_page.text


def test_fallback_models_are_compared_in_order(staff_client, versions):
    first, second = versions
    model_a, model_b = factories.AIModelFactory(display_name="Alpha"), factories.AIModelFactory(display_name="Beta")
    PromptFallbackModel.objects.bulk_create(
        [
            PromptFallbackModel(prompt=first, model=model_a, position=0),
            PromptFallbackModel(prompt=first, model=model_b, position=1),
            PromptFallbackModel(prompt=second, model=model_b, position=0),
            PromptFallbackModel(prompt=second, model=model_a, position=1),
        ]
    )
    response = staff_client.get(compare_url(second, first))
    fallbacks = next(field for field in response.context["fields"] if field.name == "fallback_models")
    assert fallbacks.changed
    assert fallbacks.left.splitlines()[0].startswith("1. Beta")
    assert fallbacks.right.splitlines()[0].startswith("1. Alpha")


def test_default_comparison_is_the_parent(staff_client, versions):
    first, second = versions
    third = prompt_new_version(prompt=first, changes={"user_template": "Summarize briefly: {{ text }}"})
    response = staff_client.get(compare_url(third))
    assert response.status_code == 200
    assert response.context["other"] == first  # its parent, not v2 before it
    assert changed_fields(response) == {"user_template", "is_active"}
    # The picker offers the slug's other versions, the compared one selected.
    options = response.context["versions"]
    assert [version.version for version in options] == [2, 1]
    assert f'<option value="{first.pk}" selected>' in response.text


def test_without_a_parent_the_previous_version_is_the_default(staff_client, versions):
    first, second = versions
    third = prompt_new_version(prompt=first)
    Prompt.objects.filter(pk=third.pk).update(parent=None)
    assert staff_client.get(compare_url(third)).context["other"] == second
    assert staff_client.get(compare_url(first)).context["other"] == second  # v1: the one after it


def test_another_version_can_be_picked(staff_client, versions):
    first, second = versions
    third = prompt_new_version(prompt=second, changes={"name": "Summarize v3"})
    response = staff_client.get(compare_url(third, first))
    assert response.context["other"] == first
    assert changed_fields(response) == {"name", "system_prompt", "temperature", "is_active"}


def test_the_only_version_has_nothing_to_compare(staff_client):
    lonely = factories.PromptFactory()
    response = staff_client.get(compare_url(lonely))
    assert response.status_code == 200
    assert response.context["other"] is None
    assert "nothing to compare" in response.text


def test_a_version_of_another_prompt_is_refused_with_a_message(staff_client, versions):
    first, second = versions
    stranger = factories.PromptFactory(slug="translate")
    response = staff_client.get(compare_url(second, stranger))
    assert response.status_code == 302
    assert response.url == compare_url(second)
    followed = staff_client.get(response.url)
    assert followed.context["other"] == first
    assert any("another prompt" in message for message in page_messages(followed))


@pytest.mark.parametrize("bad_id", ["not-a-uuid", str(uuid.uuid4())])
def test_unknown_ids_are_refused_with_a_message(staff_client, versions, bad_id):
    first, second = versions
    response = staff_client.get(f"{compare_url(second)}?with={bad_id}", follow=True)
    assert response.status_code == 200
    assert response.context["other"] == first
    assert any("No prompt version" in message for message in page_messages(response))

    response = staff_client.get(reverse("admin:aimesh_prompt_compare", args=[bad_id]), follow=True)
    assert response.status_code == 200
    assert response.redirect_chain[-1][0] == reverse("admin:aimesh_prompt_changelist")
    assert any("No prompt version" in message for message in page_messages(response))


def test_staff_without_view_permission_is_refused(client, versions):
    first, second = versions
    response = staff_member_client(client).get(compare_url(second))
    assert response.status_code == 403


def test_non_staff_user_is_sent_to_the_login(client, versions):
    first, second = versions
    client.force_login(factories.UserFactory())
    response = client.get(compare_url(second))
    assert response.status_code == 302
    assert response.url.startswith(reverse("admin:login"))


def test_activate_button_activates_the_left_version(staff_client, versions):
    first, second = versions
    page = staff_client.get(compare_url(second, first))
    assert f'action="{activate_url(second)}"' in page.text
    assert "csrfmiddlewaretoken" in page.text

    response = staff_client.post(activate_url(second), {"with": str(first.pk)})
    assert response.status_code == 302
    assert response.url == compare_url(second, first)
    assert list(Prompt.objects.filter(slug="summarize", is_active=True)) == [second]
    followed = staff_client.get(response.url)
    assert any("is now the active version" in message for message in page_messages(followed))
    assert f'action="{activate_url(second)}"' not in followed.text  # already active: no button


def test_activate_is_refused_without_change_permission(client, versions):
    first, second = versions
    viewer = staff_member_client(client, "view_prompt")
    page = viewer.get(compare_url(second))
    assert page.status_code == 200
    assert activate_url(second) not in page.text
    assert viewer.post(activate_url(second)).status_code == 403
    assert list(Prompt.objects.filter(slug="summarize", is_active=True)) == [first]


def test_activate_only_accepts_post(staff_client, versions):
    first, second = versions
    assert staff_client.get(activate_url(second)).status_code == 405
    assert list(Prompt.objects.filter(slug="summarize", is_active=True)) == [first]


def test_prompt_content_is_escaped(staff_client, versions):
    first, second = versions
    Prompt.objects.filter(pk=second.pk).update(
        name="<b>bold</b>",
        system_prompt="Ignore this: <script>alert(1)</script>",
        variables=[{"name": "text", "description": "<script>alert(2)</script>"}],
    )
    response = staff_client.get(compare_url(second, first))
    assert response.status_code == 200
    assert "<script>alert" not in response.text
    assert "<b>bold</b>" not in response.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in response.text
    assert "+Ignore this: &lt;script&gt;alert(1)&lt;/script&gt;" in response.text
    assert "&lt;b&gt;bold&lt;/b&gt;" in response.text


def test_change_form_and_changelist_link_to_the_compare_page(staff_client, versions):
    first, second = versions
    change_page = staff_client.get(reverse("admin:aimesh_prompt_change", args=[second.pk]))
    assert f'href="{compare_url(second)}"' in change_page.text
    assert "Compare versions" in change_page.text
    assert staff_client.get(reverse("admin:aimesh_prompt_add")).status_code == 200
    changelist = staff_client.get(reverse("admin:aimesh_prompt_changelist"))
    assert f'href="{compare_url(first)}"' in changelist.text
