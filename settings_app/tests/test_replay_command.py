import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from settings_app.models import WebhookDelivery
from tests.factories import WebhookDeliveryFactory, WebhookFactory

pytestmark = pytest.mark.django_db


def test_replay_one_delivery_queues_a_new_attempt(capsys, django_capture_on_commit_callbacks):
    failed = WebhookDeliveryFactory(status="failed", attempt_number=1)
    with django_capture_on_commit_callbacks():
        call_command("replay_webhooks", "--delivery", str(failed.pk))
    attempt = WebhookDelivery.objects.get(event_id=failed.event_id, attempt_number=2)
    assert attempt.status == "pending" and attempt.payload == failed.payload
    assert "Queued attempt 2" in capsys.readouterr().out


def test_recover_failed_events_of_an_organization(capsys, django_capture_on_commit_callbacks):
    hook = WebhookFactory()
    WebhookDeliveryFactory(webhook=hook, event_id="msg_a", status="failed")
    WebhookDeliveryFactory(webhook=hook, event_id="msg_b", status="succeeded")
    with django_capture_on_commit_callbacks():
        call_command("replay_webhooks", "--org", hook.organization.slug, "--since", "2020-01-01")
    assert WebhookDelivery.objects.filter(event_id="msg_a", attempt_number=2, status="pending").exists()
    assert not WebhookDelivery.objects.filter(event_id="msg_b", attempt_number=2).exists()
    assert "1 events queued in all." in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "Give --delivery"),
        (["--delivery", "not-a-uuid"], "No webhook delivery"),
        (["--org", "nobody", "--since", "2026-01-01"], "No active webhook"),
        (["--org", "x", "--since", "yesterday"], "not a date"),
        (["--org", "x", "--webhook", "y", "--since", "2026-01-01"], "exactly one"),
        (["--delivery", "00000000-0000-0000-0000-000000000000", "--since", "2026-01-01"], "cannot be combined"),
    ],
)
def test_bad_arguments_fail_clearly(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("replay_webhooks", *args)
