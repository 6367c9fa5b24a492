"""Offline certificates: checkout, verification (API keys document, command), and refusal of a
flipped byte, another machine, an expired TTL or an unknown key; key rotation."""

import json
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings
from rest_framework.test import APIClient

from ipcontrol import certificates
from ipcontrol.certificates import CertificateInvalid, certificate_verify, public_keys_from_document
from ipcontrol.services import license_activate
from licensing.models import License
from settings_app.models import SystemConfig
from tests import factories as f

pytestmark = pytest.mark.django_db

KEY_OLD = certificates.signing_key_generate()
KEY_NEW = certificates.signing_key_generate()


@pytest.fixture(autouse=True)
def _signing_keys():
    with override_settings(LICENSE_SIGNING_KEYS=[KEY_NEW, KEY_OLD]):
        yield


@pytest.fixture
def license():
    license = f.LicenseFactory(expires_at=datetime.now(UTC) + timedelta(days=30))
    license_activate(key=license.license_key, fingerprint="fp-1")
    return license


def _checkout(license, fingerprint="fp-1"):
    response = APIClient().post(
        "/api/v1/licenses/checkout", {"key": license.license_key, "fingerprint": fingerprint, "nonce": "x"},
        format="json",
    )  # fmt: skip
    assert response.status_code == 200, response.content
    return response.json()


def _keys():
    response = APIClient().get("/api/v1/licenses/public-key")
    assert response.status_code == 200
    return public_keys_from_document(response.json())


def test_checkout_signs_a_certificate_that_verifies_with_the_published_key(license):
    body = _checkout(license)
    assert body["code"] == "VALID" and body["nonce"] == "x"
    certificate = body["certificate"]
    assert certificate["kid"] == KEY_NEW.split(":")[0]
    claims = certificate_verify(certificate, fingerprint="fp-1", keys=_keys())
    assert claims["license_id"] == str(license.pk) and claims["fingerprint"] == "fp-1"
    assert claims["plan"] == license.plan.code and claims["limits"]["max_machines"] == 3
    issued = datetime.fromisoformat(claims["issued_at"].replace("Z", "+00:00"))
    expires = datetime.fromisoformat(claims["expires_at"].replace("Z", "+00:00"))
    assert expires - issued == timedelta(hours=168) and claims["ttl_seconds"] == 168 * 3600


def test_the_ttl_comes_from_system_config_and_never_outlives_the_license(license):
    SystemConfig.objects.create(key="ipcontrol.certificate_ttl_hours", value=2)
    claims = certificate_verify(_checkout(license)["certificate"], fingerprint="fp-1")
    issued = datetime.fromisoformat(claims["issued_at"].replace("Z", "+00:00"))
    assert datetime.fromisoformat(claims["expires_at"].replace("Z", "+00:00")) - issued == timedelta(hours=2)
    soon = datetime.now(UTC) + timedelta(minutes=30)
    license.expires_at = soon
    license.save(update_fields=["expires_at"])
    SystemConfig.objects.filter(key="ipcontrol.certificate_ttl_hours").update(value=100)
    claims = certificate_verify(_checkout(license)["certificate"], fingerprint="fp-1")
    assert claims["expires_at"] == soon.isoformat().replace("+00:00", "Z")
    assert 29 * 60 < claims["ttl_seconds"] <= 30 * 60  # cut to what the license has left


def test_no_certificate_unless_valid(license):
    body = _checkout(license, fingerprint="not-activated")
    assert body["code"] == "NO_MACHINE" and body["certificate"] is None
    license.status = License.Status.SUSPENDED
    license.save(update_fields=["status"])
    assert _checkout(license)["certificate"] is None


def _flip(text: str, index: int) -> str:
    replacement = "A" if text[index] != "A" else "B"
    return text[:index] + replacement + text[index + 1 :]


@pytest.mark.parametrize("field", ["payload", "signature"])
def test_a_flipped_byte_fails(license, field):
    certificate = _checkout(license)["certificate"]
    for index in (0, len(certificate[field]) // 2, len(certificate[field]) - 2):
        tampered = {**certificate, field: _flip(certificate[field], index)}
        with pytest.raises(CertificateInvalid) as raised:
            certificate_verify(tampered, fingerprint="fp-1")
        assert raised.value.code in ("BAD_SIGNATURE", "MALFORMED")


def test_another_fingerprint_fails(license):
    certificate = _checkout(license)["certificate"]
    with pytest.raises(CertificateInvalid) as raised:
        certificate_verify(certificate, fingerprint="fp-2")
    assert raised.value.code == "FINGERPRINT_MISMATCH"


def test_an_expired_ttl_fails(license):
    certificate = _checkout(license)["certificate"]
    certificate_verify(certificate, fingerprint="fp-1", now=datetime.now(UTC) + timedelta(hours=167))
    with pytest.raises(CertificateInvalid) as raised:
        certificate_verify(certificate, fingerprint="fp-1", now=datetime.now(UTC) + timedelta(hours=169))
    assert raised.value.code == "EXPIRED"


def test_rotation_keeps_old_certificates_valid_until_the_old_key_is_dropped(license):
    with override_settings(LICENSE_SIGNING_KEYS=[KEY_OLD]):
        old = _checkout(license)["certificate"]
    certificate_verify(old, fingerprint="fp-1")  # KEY_OLD is still listed (second)
    with override_settings(LICENSE_SIGNING_KEYS=[KEY_NEW]):
        with pytest.raises(CertificateInvalid) as raised:
            certificate_verify(old, fingerprint="fp-1")
    assert raised.value.code == "UNKNOWN_KEY"


def test_development_key_is_generated_once_under_var(tmp_path):
    with override_settings(LICENSE_SIGNING_KEYS=[], VAR_DIR=tmp_path):
        first = certificates.signing_keys()[0].kid
        certificates.signing_keys.cache_clear()
        assert certificates.signing_keys()[0].kid == first
    key_file = tmp_path / certificates.DEV_KEY_FILENAME
    assert key_file.stat().st_mode & 0o777 == 0o600


def test_verify_command(license, tmp_path):
    path = tmp_path / "certificate.json"
    path.write_text(json.dumps(_checkout(license)))
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps(APIClient().get("/api/v1/licenses/public-key").json()))
    out = StringIO()
    call_command(
        "verify_license_certificate", str(path), "--fingerprint", "fp-1", "--public-keys", str(keys), stdout=out
    )
    assert out.getvalue().startswith(f"VALID license {license.pk}")
    with pytest.raises(CommandError, match="INVALID FINGERPRINT_MISMATCH"):
        call_command("verify_license_certificate", str(path), "--fingerprint", "fp-9", stdout=out)
    path.write_text("{}")
    with pytest.raises(CommandError, match="INVALID MALFORMED"):
        call_command("verify_license_certificate", str(path), "--fingerprint", "fp-1", stdout=out)


def test_validate_license_command_prints_the_endpoint_answer(license):
    from ipcontrol.buffer import validation_buffer_flush
    from ipcontrol.models import LicenseValidation

    out = StringIO()
    call_command("validate_license", license.license_key, "--fingerprint", "fp-1", stdout=out)
    body = json.loads(out.getvalue())
    assert body["code"] == "VALID" and body["license"]["id"] == str(license.pk)
    with pytest.raises(CommandError, match="NO_MACHINE"):
        call_command("validate_license", license.license_key, stdout=out)
    with pytest.raises(CommandError, match="NOT_FOUND"):
        call_command("validate_license", "CEL-NOPE", stdout=StringIO())
    validation_buffer_flush()
    assert LicenseValidation.objects.exclude(result_code="ACTIVATED").count() == 3


def test_generate_key_command_prints_a_usable_key():
    out = StringIO()
    call_command("generate_license_signing_key", stdout=out)
    with override_settings(LICENSE_SIGNING_KEYS=[out.getvalue().strip()]):
        assert certificates.signing_keys()[0].kid == out.getvalue().split(":")[0]
