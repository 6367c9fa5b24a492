"""Encryption of secrets at rest with rotatable keys (cryptography's MultiFernet).

``FIELD_ENCRYPTION_KEYS`` lists Fernet keys, newest first: new values are encrypted with the
first, every listed key can decrypt, and ``rotate`` re-encrypts a token under the first key. With
no key configured (development only) one is derived from ``SECRET_KEY``.
"""

import base64
import hashlib
import hmac
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver


class DecryptionError(Exception):
    """A stored secret could not be decrypted with any configured key."""


@lru_cache(maxsize=1)
def _fernet() -> MultiFernet:
    keys = list(settings.FIELD_ENCRYPTION_KEYS)
    if not keys:
        digest = hashlib.sha256(("celaest-field-encryption:" + settings.SECRET_KEY).encode()).digest()
        keys = [base64.urlsafe_b64encode(digest).decode()]
    return MultiFernet([Fernet(key) for key in keys])


@receiver(setting_changed)
def _reset_keys(*, setting, **kwargs):
    if setting in ("FIELD_ENCRYPTION_KEYS", "SECRET_KEY"):
        _fernet.cache_clear()


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise DecryptionError("secret cannot be decrypted with the configured keys") from exc


def rotate(token: str) -> str:
    """Re-encrypt ``token`` under the newest key."""
    try:
        return _fernet().rotate(token.encode()).decode()
    except InvalidToken as exc:
        raise DecryptionError("secret cannot be decrypted with the configured keys") from exc


def hash_secret(secret: str) -> str:
    """A one-way digest of a high-entropy secret (API keys, session tokens): hex SHA-256."""
    return hashlib.sha256(secret.encode()).hexdigest()


def secrets_match(secret: str, digest: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), digest)
