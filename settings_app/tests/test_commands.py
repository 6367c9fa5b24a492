import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.test import APIClient

from settings_app.models import UserApiKey
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_create_api_key_prints_a_working_key_alone_on_the_last_line(capsys):
    user = UserFactory(email="ops@example.com")
    call_command(
        "create_api_key", "OPS@example.com", "--name", "ci", "--scopes", "members:read", "--expires-in-days", "7"
    )
    key = capsys.readouterr().out.strip().splitlines()[-1]
    assert key.startswith("cel_")
    stored = UserApiKey.objects.get(user=user)
    assert stored.scopes == ["members:read"] and stored.expires_at is not None
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert client.get("/api/v1/me").status_code == 200


@pytest.mark.parametrize(
    "args, message",
    [
        (["nobody@example.com", "--name", "x"], "No active user"),
        (["ops@example.com", "--name", "x", "--scopes", "bad"], "Invalid scope"),
        (["ops@example.com", "--name", "x", "--expires-in-days", "0"], "expires_in_days"),
    ],
)
def test_create_api_key_bad_arguments_fail_clearly(args, message):
    UserFactory(email="ops@example.com")
    with pytest.raises(CommandError, match=message):
        call_command("create_api_key", *args)
    assert not UserApiKey.objects.exists()
