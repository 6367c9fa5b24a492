"""Writes for settings_app, one module per idea:

- ``api_keys``: user API keys, issued, revoked, their use counted;
- ``sessions``: login sessions, their activity, revocation and cleanup;
- ``webhooks``: webhook endpoints and their signing secrets;
- ``outbox``: platform events written as pending deliveries, and their delivery (attempts,
  retries, deferral, sweeping, replay, recovery); other apps emit through ``settings_app.events``;
- ``config``: system config.

settings_app itself imports from those modules. What other modules imported from
``settings_app.services`` before it became a package is re-exported here.
"""

from .api_keys import api_key_create, api_key_revoke
from .config import KEEP, system_configs_reencrypt
from .outbox import webhook_delivery_replay, webhook_recover_failed, webhook_send_test
from .sessions import user_session_end, user_session_revoke, user_session_start, user_session_touch
from .webhooks import WEBHOOK_SECRET_PREFIX, webhook_update

__all__ = [
    "KEEP",
    "WEBHOOK_SECRET_PREFIX",
    "api_key_create",
    "api_key_revoke",
    "system_configs_reencrypt",
    "user_session_end",
    "user_session_revoke",
    "user_session_start",
    "user_session_touch",
    "webhook_delivery_replay",
    "webhook_recover_failed",
    "webhook_send_test",
    "webhook_update",
]
