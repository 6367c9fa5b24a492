"""Verify an offline license certificate: signature, machine fingerprint and time window."""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from ipcontrol.certificates import CertificateInvalid, certificate_verify, public_keys_from_document


class Command(BaseCommand):
    help = (
        "Verify a license certificate file (the 'certificate' object of POST /api/v1/licenses/checkout): its "
        "Ed25519 signature, that it names the given machine, and that it has not expired. Exits 1 if invalid."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="The certificate, as JSON.")
        parser.add_argument("--fingerprint", required=True, help="The machine fingerprint it must name.")
        parser.add_argument(
            "--public-keys",
            help="The JSON of GET /api/v1/licenses/public-key, to verify without this server's keys.",
        )

    def handle(self, *args, file, fingerprint, public_keys, **options):
        try:
            certificate = Path(file).read_text()
            keys = public_keys_from_document(json.loads(Path(public_keys).read_text())) if public_keys else None
        except (OSError, ValueError) as exc:
            raise CommandError(f"Cannot read input: {exc}") from exc
        try:
            document = json.loads(certificate)
            if isinstance(document, dict) and isinstance(document.get("certificate"), dict):
                document = document["certificate"]  # the whole checkout answer was saved
            claims = certificate_verify(document, fingerprint=fingerprint, keys=keys)
        except (CertificateInvalid, ValueError) as exc:
            code = getattr(exc, "code", "MALFORMED")
            raise CommandError(f"INVALID {code}: {getattr(exc, 'message', exc)}") from exc
        self.stdout.write(f"VALID license {claims['license_id']} ({claims['plan']}) until {claims['expires_at']}\n")
        self.stdout.write(json.dumps(claims, indent=2, sort_keys=True) + "\n")
