"""Expire licenses past their expiry now, as the beat job does."""

from django.core.management.base import BaseCommand

from licensing.tasks import expire_licenses


class Command(BaseCommand):
    help = "Mark every active or trial license whose expires_at has passed as expired."

    def handle(self, *args, **options):
        expired = expire_licenses()
        self.stdout.write(f"{expired} license(s) expired.\n")
