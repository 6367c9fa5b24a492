"""``manage.py rotate_encryption_key``: re-encrypt every secret at rest under the newest key.

Put the new Fernet key first in ``FIELD_ENCRYPTION_KEYS`` (keep the old ones after it), run this,
then the old keys can be removed. Covers the provider key pool, the webhook secrets and the
sensitive system settings.
"""

from django.core.management.base import BaseCommand
from django.db import transaction

from aimesh.models import AIApiKey
from celaest import crypto
from settings_app.models import Webhook
from settings_app.services.config import system_configs_reencrypt

#: (model, encrypted fields) for every secret stored encrypted
ENCRYPTED_FIELDS = ((AIApiKey, ("key_encrypted",)), (Webhook, ("secret_encrypted", "previous_secret_encrypted")))


class Command(BaseCommand):
    help = "Re-encrypt provider keys, webhook secrets and sensitive settings under the first FIELD_ENCRYPTION_KEYS key."

    def handle(self, *args, **options):
        for model, fields in ENCRYPTED_FIELDS:
            count = 0
            with transaction.atomic():
                for row in model.objects.select_for_update().order_by("pk"):
                    changed = {name: crypto.rotate(getattr(row, name)) for name in fields if getattr(row, name)}
                    if changed:
                        model.objects.filter(pk=row.pk).update(**changed)
                        count += 1
            self.stdout.write(f"{model._meta.db_table}: {count} rows re-encrypted")
        self.stdout.write(f"system_config: {system_configs_reencrypt()} sensitive values re-encrypted")
