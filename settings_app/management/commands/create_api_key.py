"""Issue a user API key from the command line; the key alone is printed on the last line."""

from django.core.management.base import BaseCommand, CommandError

from celaest.errors import DomainError
from identity.models import User
from settings_app.services.api_keys import api_key_create


class Command(BaseCommand):
    help = (
        "Create an API key for the user with EMAIL. The key is shown once, alone on the last line "
        "of output; only its hash is stored. Example: manage.py create_api_key owner@demo.celaest.local "
        "--name ci --scopes licenses:read tasks:write --expires-in-days 90"
    )

    def add_arguments(self, parser):
        parser.add_argument("email", help="Email of an active user.")
        parser.add_argument("--name", required=True, help="A label for the key, e.g. 'CI pipeline'.")
        parser.add_argument(
            "--scopes",
            nargs="+",
            default=["*"],
            help="Scopes such as licenses:read or tasks:write; '*' (default) allows all the role allows.",
        )
        parser.add_argument("--expires-in-days", type=int, default=None, help="Days until the key expires.")
        parser.add_argument("--rate-limit-rpm", type=int, default=600, help="Requests per minute (default 600).")

    def handle(self, *args, email, name, scopes, expires_in_days, rate_limit_rpm, **options):
        user = User.objects.filter(email__iexact=email, is_active=True).first()
        if user is None:
            raise CommandError(f"No active user with email {email!r}.")
        try:
            issued = api_key_create(
                user=user, name=name, scopes=scopes, expires_in_days=expires_in_days, rate_limit_rpm=rate_limit_rpm
            )
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        key = issued.api_key
        self.stderr.write(
            f"Created API key {key.key_prefix}… '{key.name}' for {user.email} "
            f"(scopes: {' '.join(key.scopes)}; expires: {key.expires_at or 'never'}). "
            "Store it now: it is not shown again."
        )
        self.stdout.write(issued.raw_key)
