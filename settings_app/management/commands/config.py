"""Read or change a system setting from the command line. Sensitive values are never printed;
they are stored encrypted (``SystemConfig``), and ``config reencrypt`` puts them under the newest
``FIELD_ENCRYPTION_KEYS`` key after a rotation."""

import json

from django.core.management.base import BaseCommand, CommandError

from audit.models import AuditLog
from audit.services import audit_model_write, model_snapshot
from celaest.errors import DomainError
from settings_app.api.serializers import SENSITIVE_MASK
from settings_app.models import SystemConfig
from settings_app.services.config import system_config_set, system_configs_reencrypt


def _shown(config: SystemConfig) -> str:
    return json.dumps(SENSITIVE_MASK if config.is_sensitive else config.value, ensure_ascii=False)


class Command(BaseCommand):
    help = (
        "Read or change a system setting. 'config get KEY' prints its JSON value (masked when "
        "sensitive); 'config set KEY VALUE' stores VALUE, which must be JSON: numbers and true/false "
        "as they are, text in double quotes. Examples: manage.py config set billing.grace_days 7; "
        "manage.py config set support.email '\"help@example.com\"'; manage.py config set openai.org "
        "'\"org-123\"' --sensitive"
    )

    def add_arguments(self, parser):
        operations = parser.add_subparsers(dest="operation", required=True, metavar="get|set|reencrypt")
        get = operations.add_parser("get", help="Print a setting's JSON value.")
        get.add_argument("key")
        put = operations.add_parser("set", help="Create or change a setting.")
        put.add_argument("key")
        put.add_argument("value", help="A JSON value, e.g. 7, true, '\"text\"', '{\"a\": 1}'.")
        put.add_argument(
            "--sensitive", action="store_true", default=None, help="Mask the value wherever shown; store it encrypted."
        )
        put.add_argument("--description", default=None, help="What the setting is for.")
        operations.add_parser(
            "reencrypt", help="Re-encrypt sensitive values under the first FIELD_ENCRYPTION_KEYS key (after rotating)."
        )

    def handle(self, *args, operation, key=None, **options):
        if operation == "reencrypt":
            try:
                count = system_configs_reencrypt()
            except DomainError as exc:
                raise CommandError(exc.message) from exc
            self.stdout.write(f"system_config: {count} sensitive values re-encrypted")
            return
        if operation == "get":
            config = SystemConfig.objects.filter(key=key).first()
            if config is None:
                raise CommandError(f"No setting named {key!r}.")
            self.stdout.write(_shown(config))
            return
        try:
            value = json.loads(options["value"])
        except ValueError as exc:
            raise CommandError(
                f"VALUE must be JSON ({exc.msg}); put text in double quotes, e.g. '\"{options['value']}\"'."
            ) from exc
        except RecursionError:
            raise CommandError("VALUE is nested too deeply.") from None
        before = model_snapshot(SystemConfig.objects.filter(key=key).first())
        try:
            config, created = system_config_set(
                key=key, value=value, is_sensitive=options["sensitive"], description=options["description"]
            )
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        action = AuditLog.Action.CREATE if created else AuditLog.Action.UPDATE
        audit_model_write(action=action, instance=config, before=before, source="command")
        self.stdout.write(f"{key} = {_shown(config)}")
