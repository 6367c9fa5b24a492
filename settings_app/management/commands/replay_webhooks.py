"""Send webhook events again: one delivery, or every failed event of an endpoint since a date."""

from datetime import UTC, date, datetime, time

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from celaest.errors import DomainError
from settings_app.models import Webhook, WebhookDelivery
from settings_app.services.outbox import webhook_delivery_replay, webhook_recover_failed


class Command(BaseCommand):
    help = (
        "Replay webhook deliveries. Either --delivery ID (send that event again now, as a new attempt), "
        "or --since YYYY-MM-DD with --webhook ID or --org SLUG (send again every event whose attempts "
        "since that day all failed, e.g. after a receiver's outage). Deliveries go out through the "
        "Celery workers. Example: manage.py replay_webhooks --org demo --since 2026-11-20"
    )

    def add_arguments(self, parser):
        parser.add_argument("--delivery", help="Id of a webhook delivery to send again.")
        parser.add_argument("--webhook", help="Id of a webhook endpoint.")
        parser.add_argument("--org", help="Slug of an organization: all of its active endpoints.")
        parser.add_argument("--since", help="First day (UTC) of the failures to recover, YYYY-MM-DD.")

    def handle(self, *args, delivery, webhook, org, since, **options):
        try:
            if delivery:
                if webhook or org or since:
                    raise CommandError("--delivery cannot be combined with --webhook, --org or --since.")
                self._replay_one(delivery)
            else:
                self._recover(webhook=webhook, org=org, since=since)
        except DomainError as exc:
            raise CommandError(exc.message) from exc

    def _replay_one(self, delivery_id: str) -> None:
        try:
            source = WebhookDelivery.objects.select_related("webhook").get(pk=delivery_id)
        except (WebhookDelivery.DoesNotExist, ValidationError, ValueError) as exc:
            raise CommandError(f"No webhook delivery {delivery_id!r}.") from exc
        attempt = webhook_delivery_replay(delivery=source)
        self.stdout.write(f"Queued attempt {attempt.attempt_number} of {attempt.event_type} ({attempt.event_id}).")

    def _recover(self, *, webhook: str | None, org: str | None, since: str | None) -> None:
        if not since or bool(webhook) == bool(org):
            raise CommandError("Give --delivery ID, or --since YYYY-MM-DD with exactly one of --webhook / --org.")
        try:
            start = datetime.combine(date.fromisoformat(since), time.min, tzinfo=UTC)
        except ValueError as exc:
            raise CommandError(f"{since!r} is not a date: use YYYY-MM-DD.") from exc
        endpoints = Webhook.objects.filter(status=Webhook.Status.ACTIVE)
        try:
            endpoints = endpoints.filter(pk=webhook) if webhook else endpoints.filter(organization__slug=org)
            endpoints = list(endpoints)
        except (ValidationError, ValueError) as exc:
            raise CommandError(f"No webhook {webhook!r}.") from exc
        if not endpoints:
            raise CommandError("No active webhook endpoint matches.")
        total = 0
        for endpoint in endpoints:
            queued = webhook_recover_failed(webhook=endpoint, since=start)
            total += queued
            self.stdout.write(f"{endpoint.name}: {queued} failed events queued again")
        self.stdout.write(f"{total} events queued in all.")
