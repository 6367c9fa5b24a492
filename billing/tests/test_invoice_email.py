"""Invoice e-mail: configured from EMAIL_URL (printed to the console when it is not set), every
attempt bounded by EMAIL_TIMEOUT, and a bounded number of retries against a mail server that is
down, after which the staff are told. Local TCP servers on 127.0.0.1 play the mail servers."""

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from audit.models import SystemEvent
from billing import tasks
from billing.tasks import invoice_send
from tests import factories as f

ROOT = Path(__file__).resolve().parents[2]
PRINT_EMAIL = (
    "import django; django.setup(); from django.conf import settings as s; "
    "print(s.EMAIL_BACKEND, s.EMAIL_HOST, s.EMAIL_PORT, s.EMAIL_HOST_USER, s.EMAIL_HOST_PASSWORD, "
    "s.EMAIL_USE_TLS, s.EMAIL_USE_SSL, s.EMAIL_TIMEOUT)"
)


def _email_settings(**env) -> list[str]:
    # A fresh process: pytest-django replaces EMAIL_BACKEND with its in-memory outbox here.
    clean = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "EMAIL_URL"}}
    result = subprocess.run(
        [sys.executable, "-c", PRINT_EMAIL],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "celaest.settings", "CELAEST_ENV_FILE": "/nonexistent", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_without_email_url_mail_is_printed_to_the_console_and_waits_are_bounded(tmp_path):
    backend, *_, timeout = _email_settings(CELAEST_VAR_DIR=str(tmp_path))
    assert backend == "django.core.mail.backends.console.EmailBackend"
    assert 0 < int(timeout) <= 30


def test_email_url_configures_the_smtp_server(tmp_path):
    values = _email_settings(
        CELAEST_VAR_DIR=str(tmp_path), EMAIL_URL="smtp+tls://billing%40example.com:s3cr%2Ft@mail.example.com:587"
    )
    assert values == [
        "django.core.mail.backends.smtp.EmailBackend", "mail.example.com", "587", "billing@example.com", "s3cr/t",
        "True", "False", "20",
    ]  # fmt: skip


class _MailServer:
    """Accepts connections on 127.0.0.1 and either hangs up at once (a server refusing mail) or
    never says a word (a server that hangs); counts the connections."""

    def __init__(self, *, hang: bool):
        self.hang, self.connections, self._held = hang, 0, []
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.socket.accept()
            except OSError:
                return
            self.connections += 1
            if self.hang:
                self._held.append(conn)
            else:
                conn.close()

    def close(self):
        self.socket.close()
        for conn in self._held:
            conn.close()


@pytest.fixture
def invoice(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    return f.InvoiceFactory()


def _send_in_a_thread(invoice_id, *, within: float):
    outcome = {}

    def run():
        from django.db import connection

        try:
            outcome["result"] = invoice_send.apply(args=[str(invoice_id)]).get()
        finally:
            connection.close()

    sender = threading.Thread(target=run, daemon=True)
    started = time.monotonic()
    sender.start()
    sender.join(within)
    assert not sender.is_alive(), f"invoice_send still running after {within} s"
    return outcome["result"], time.monotonic() - started


@pytest.mark.django_db(transaction=True)
def test_a_mail_server_that_refuses_is_retried_a_bounded_number_of_times_then_the_staff_are_told(settings, invoice):
    server = _MailServer(hang=False)
    settings.EMAIL_PORT = server.port
    try:
        # apply() runs the retries at once, in this thread, instead of after their waits.
        result, _ = _send_in_a_thread(invoice.pk, within=60)
    finally:
        server.close()
    assert result is False
    assert server.connections == 1 + tasks.INVOICE_SEND_MAX_RETRIES
    (event,) = SystemEvent.objects.filter(event_type="billing.invoice_email_failed")
    assert event.severity == SystemEvent.Severity.ERROR
    assert event.data["invoice"] == str(invoice.pk) and event.data["attempts"] == 1 + tasks.INVOICE_SEND_MAX_RETRIES


@pytest.mark.django_db(transaction=True)
def test_a_mail_server_that_never_answers_holds_each_attempt_only_email_timeout(settings, invoice):
    server = _MailServer(hang=True)
    settings.EMAIL_PORT = server.port
    settings.EMAIL_TIMEOUT = 0.3
    try:
        result, took = _send_in_a_thread(invoice.pk, within=30)
    finally:
        server.close()
    assert result is False and server.connections == 1 + tasks.INVOICE_SEND_MAX_RETRIES
    assert took < 10
