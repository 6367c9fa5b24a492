"""Management commands of the AI mesh: key rotation, key checks, the fake provider."""

import socket
import subprocess
import sys
import time
import uuid
from io import StringIO

import openai
import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command

from aimesh import routing
from aimesh.models import AIApiKey
from aimesh.testing import pool_key
from celaest import crypto
from settings_app.models import Webhook
from tests import factories as f

pytestmark = pytest.mark.django_db


def test_rotate_encryption_key_re_encrypts_provider_keys_webhook_secrets_and_sensitive_settings(settings, provider):
    from settings_app.models import SystemConfig

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [old]
    key = pool_key(provider, "sk-rotate-me")
    SystemConfig.objects.create(key="smtp.password", value="hunter2", is_sensitive=True)
    hook = f.WebhookFactory(
        secret_encrypted=crypto.encrypt("whsec_current"), previous_secret_encrypted=crypto.encrypt("whsec_old")
    )
    settings.FIELD_ENCRYPTION_KEYS = [new, old]
    out = StringIO()
    call_command("rotate_encryption_key", stdout=out)
    assert "ai_api_pool: 1 rows" in out.getvalue()
    settings.FIELD_ENCRYPTION_KEYS = [new]  # the old key can go now
    key.refresh_from_db()
    hook = Webhook.objects.get(pk=hook.pk)
    assert crypto.decrypt(key.key_encrypted) == "sk-rotate-me"
    assert crypto.decrypt(hook.secret_encrypted) == "whsec_current"
    assert crypto.decrypt(hook.previous_secret_encrypted) == "whsec_old"
    assert "system_config: 1 sensitive" in out.getvalue()
    assert SystemConfig.objects.get(key="smtp.password").value == "hunter2"


def test_check_ai_keys_restores_keys_that_answer(provider):
    working = pool_key(provider, "sk-back-secret-1234", name="back", is_healthy=False)
    failing = pool_key(provider, "sk-fail-401-secret", name="broken", is_healthy=False)
    out = StringIO()
    call_command("check_ai_keys", stdout=out)
    assert AIApiKey.objects.get(pk=working.pk).is_healthy
    assert not AIApiKey.objects.get(pk=failing.pk).is_healthy
    assert "openai:back (...1234) healthy" in out.getvalue()
    assert "openai:broken" in out.getvalue() and "secret" not in out.getvalue()  # names and hints only


def test_a_key_that_cannot_be_decrypted_does_not_stop_the_probe(provider):
    # Probed in pk order: the unreadable key comes first.
    unreadable = pool_key(provider, "sk-lost-secret", name="lost", is_healthy=False, id=uuid.UUID(int=1))
    AIApiKey.objects.filter(pk=unreadable.pk).update(
        key_encrypted=Fernet(Fernet.generate_key()).encrypt(b"sk-lost-secret").decode()
    )
    working = pool_key(provider, "sk-back-secret-5678", name="back", is_healthy=False, id=uuid.UUID(int=2))
    result = routing.keys_probe_unhealthy()
    assert result == {"restored": [working.pk], "still_failing": [unreadable.pk]}
    lost = AIApiKey.objects.get(pk=unreadable.pk)
    assert not lost.is_healthy and lost.last_error == "cannot decrypt the stored key" and lost.last_checked_at
    assert AIApiKey.objects.get(pk=working.pk).is_healthy


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_fake_provider_command_serves_the_openai_protocol():
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "manage.py", "fake_provider", "--port", str(port), "--latency-ms", "5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        client = openai.OpenAI(api_key="sk-any", base_url=f"http://127.0.0.1:{port}/v1", max_retries=5)
        deadline = time.monotonic() + 20
        while True:
            try:
                answer = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "ping"}])
                break
            except openai.APIConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        again = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "ping"}])
        assert answer.choices[0].message.content == again.choices[0].message.content  # deterministic
        with pytest.raises(openai.RateLimitError):
            openai.OpenAI(api_key="sk-fail-429", base_url=f"http://127.0.0.1:{port}/v1", max_retries=0).models.list()
    finally:
        process.terminate()
        process.wait(timeout=10)
