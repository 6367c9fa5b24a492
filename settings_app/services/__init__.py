"""Writes for settings_app, one module per idea:

- ``api_keys``: user API keys, issued, revoked, their use counted;
- ``sessions``: login sessions, their activity, revocation and cleanup;
- ``webhooks``: webhook endpoints and their signing secrets;
- ``outbox``: platform events written as pending deliveries, and their delivery (attempts,
  retries, deferral, sweeping, replay, recovery); other apps emit through ``settings_app.events``;
- ``config``: system config;
- ``flags``: feature flags switched on and off.

Callers import from the module that holds the idea (``settings_app.services.api_keys``).
"""
