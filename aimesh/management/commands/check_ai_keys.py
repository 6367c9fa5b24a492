"""``manage.py check_ai_keys``: probe the pool's unhealthy keys now and restore those that work."""

from django.core.management.base import BaseCommand

from aimesh.models import AIApiKey
from aimesh.routing import key_probe


class Command(BaseCommand):
    help = "Probe unhealthy provider keys (or --all active keys) and restore the ones that answer."

    def add_arguments(self, parser):
        parser.add_argument("--all", action="store_true", help="Probe every active key, not only unhealthy ones.")

    def handle(self, *args, **options):
        keys = AIApiKey.objects.filter(is_active=True).order_by("provider", "priority")
        if not options["all"]:
            keys = keys.filter(is_healthy=False)
        for key in keys:
            healthy = key_probe(key=key)
            self.stdout.write(
                f"{key.provider}:{key.key_name} (...{key.key_hint}) {'healthy' if healthy else 'failing'}"
            )
