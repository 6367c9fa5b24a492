"""Validate a license key as the public endpoint does, and print its answer."""

import json

from django.core.management.base import BaseCommand, CommandError

from ipcontrol.services import license_check_body, license_validate


class Command(BaseCommand):
    help = (
        "Validate a license key (optionally on a machine fingerprint) and print the JSON answer of "
        "POST /api/v1/licenses/validate. The attempt is recorded like any other. Exits 1 unless valid."
    )

    def add_arguments(self, parser):
        parser.add_argument("key")
        parser.add_argument("--fingerprint", default="", help="The machine fingerprint (default: none).")
        parser.add_argument("--hostname", default="")

    def handle(self, *args, key, fingerprint, hostname, **options):
        if len(key) > 100 or len(fingerprint) > 255 or len(hostname) > 255:
            raise CommandError("key (100), fingerprint and hostname (255) are too long.")
        check = license_validate(key=key, fingerprint=fingerprint, hostname=hostname, ip_address=None)
        self.stdout.write(json.dumps(license_check_body(check, nonce=None), indent=2) + "\n")
        if not check.valid:
            raise CommandError(check.code)
