"""Secrets at rest: encryption with rotatable keys, and one-way hashes."""

import pytest
from cryptography.fernet import Fernet

from celaest import crypto


def test_encrypt_round_trip_and_ciphertext_hides_the_secret(settings):
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    token = crypto.encrypt("sk-live-123")
    assert "sk-live-123" not in token
    assert crypto.decrypt(token) == "sk-live-123"


def test_rotation_re_encrypts_under_the_newest_key(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [old]
    token = crypto.encrypt("whsec_abc")
    settings.FIELD_ENCRYPTION_KEYS = [new, old]
    rotated = crypto.rotate(token)
    settings.FIELD_ENCRYPTION_KEYS = [new]
    assert crypto.decrypt(rotated) == "whsec_abc"
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(token)


def test_hash_secret_matches_only_the_same_secret():
    digest = crypto.hash_secret("cel_abc")
    assert len(digest) == 64 and "cel_abc" not in digest
    assert crypto.secrets_match("cel_abc", digest)
    assert not crypto.secrets_match("cel_abd", digest)
