"""``manage.py fake_provider``: the local OpenAI/Anthropic-protocol provider (aimesh.fake_provider)."""

from django.core.management.base import BaseCommand

from aimesh.fake_provider import FakeProvider


class Command(BaseCommand):
    help = (
        "Serve the OpenAI chat-completions and Anthropic messages protocols locally with deterministic "
        "answers, for development, tests and benchmarks. Keys containing fail-429, fail-500, fail-529, "
        "fail-401 or hang inject that failure."
    )

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=9100)
        parser.add_argument("--host", default="127.0.0.1", help="Bind address (loopback by default).")
        parser.add_argument("--latency-ms", type=int, default=0, help="Delay added to every answer.")
        parser.add_argument("--hang-seconds", type=float, default=30.0, help="How long a 'hang' key hangs.")
        parser.add_argument("--verbose", action="store_true", help="Log every request.")

    def handle(self, *args, **options):
        provider = FakeProvider(
            host=options["host"],
            port=options["port"],
            latency_ms=options["latency_ms"],
            hang_seconds=options["hang_seconds"],
            verbose=options["verbose"],
        )
        self.stdout.write(f"Fake AI provider on {provider.url} (latency {options['latency_ms']} ms)")
        try:
            provider.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            provider.stop()
