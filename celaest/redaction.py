"""Keep secrets out of logs, audit diffs and event payloads."""

REDACTED = "[redacted]"
_SECRET_MARKERS = ("password", "secret", "token", "key_encrypted", "key_hash", "api_key", "private", "credential")
_NOT_SECRET = {"key_prefix", "key_hint", "key_name", "secret_hash", "license_key", "idempotency_key"}


def is_secret_field(name: str) -> bool:
    name = name.lower()
    if name in _NOT_SECRET:
        return False
    return any(marker in name for marker in _SECRET_MARKERS)


def redact(value):
    """A copy of ``value`` with every secret-looking key's value replaced by ``[redacted]``."""
    if isinstance(value, dict):
        return {key: REDACTED if is_secret_field(str(key)) else redact(item) for key, item in value.items()}
    if isinstance(value, list):
        return [redact(item) for item in value]
    return value
