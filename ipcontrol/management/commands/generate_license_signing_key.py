"""Generate an Ed25519 key for signing offline license certificates."""

from django.core.management.base import BaseCommand

from ipcontrol.certificates import signing_key_generate


class Command(BaseCommand):
    help = (
        "Print a new LICENSE_SIGNING_KEYS entry (kid:base64url-private-key). To rotate, put it first in "
        "LICENSE_SIGNING_KEYS and keep the old entry until certificates it signed have expired."
    )

    def handle(self, *args, **options):
        self.stdout.write(signing_key_generate() + "\n")
