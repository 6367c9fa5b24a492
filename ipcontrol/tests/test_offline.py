"""Encrypted license files and air-gapped activation, checked the way offline software checks
them: with the public keys alone (and its own license key for the file's contents)."""

import json

import pytest
from rest_framework.test import APIClient

from identity.models import User
from ipcontrol.certificates import CertificateInvalid, public_keys_from_document
from ipcontrol.models import LicenseIpBinding
from ipcontrol.offline import activation_request, activation_response_verify, license_file_verify
from tests import factories as f

pytestmark = pytest.mark.django_db


def _public_keys():
    return public_keys_from_document(APIClient().get("/api/v1/licenses/public-key").json())


@pytest.fixture
def license():
    plan = f.SubscriptionPlanFactory(limits={"max_machines": 1}, features=["secret-module", "export"])
    return f.LicenseFactory(plan=plan)


def _post(route, payload):
    response = APIClient().post(f"/api/v1/licenses/{route}", payload, format="json", REMOTE_ADDR="203.0.113.3")
    assert response.status_code == 200, response.content
    return response.json()


def test_an_encrypted_license_file_opens_only_with_its_license_key_on_its_machine(license):
    _post("activate", {"key": license.license_key, "fingerprint": "fp"})
    body = _post("license-file", {"key": license.license_key, "fingerprint": "fp"})
    assert body["code"] == "VALID"
    document = body["license_file"]
    assert document["format"] == "celaest-license-file/1" and document["enc"] == "A256GCM"
    assert "secret-module" not in json.dumps(document)  # the entitlements are not readable in it
    keys = _public_keys()
    claims = license_file_verify(document, license_key=license.license_key, fingerprint="fp", keys=keys)
    assert claims["entitlements"] == ["export", "secret-module"] and claims["license_id"] == str(license.pk)
    # A key typed by hand opens it too; another key or another machine does not.
    assert license_file_verify(json.dumps(document), license_key=license.license_key.lower(), fingerprint="fp")
    for key, fingerprint in ((f.LicenseFactory().license_key, "fp"), (license.license_key, "other")):
        with pytest.raises(CertificateInvalid) as refused:
            license_file_verify(document, license_key=key, fingerprint=fingerprint, keys=keys)
        assert refused.value.code == "BAD_KEY"
    tampered = {**document, "ciphertext": document["ciphertext"][:-4] + "AAAA"}
    with pytest.raises(CertificateInvalid) as refused:
        license_file_verify(tampered, license_key=license.license_key, fingerprint="fp", keys=keys)
    assert refused.value.code == "BAD_SIGNATURE"


def test_no_license_file_for_a_machine_without_a_seat(license):
    body = _post("license-file", {"key": license.license_key, "fingerprint": "fp"})
    assert (body["code"], body["license_file"]) == ("NO_MACHINE", None)


def _owner_client(license, role=User.Role.OWNER):
    client = APIClient()
    client.force_authenticate(f.UserFactory(organization=license.organization, role=role))
    return client


def test_air_gapped_activation_round_trip(license):
    request = activation_request(license_key=license.license_key, fingerprint="offline-pc", hostname="plant-7")
    uploaded = json.dumps(request)  # the file, as the person uploads it
    response = _owner_client(license).post("/api/v1/licenses/offline-activations", {"request": uploaded}, format="json")
    assert response.status_code == 200, response.content
    keys = _public_keys()
    claims = activation_response_verify(response.json(), request=request, keys=keys)
    assert (claims["valid"], claims["code"], claims["license_id"]) == (True, "ACTIVATED", str(license.pk))
    inner = license_file_verify(claims["license_file"], license_key=license.license_key, fingerprint="offline-pc")
    assert inner["fingerprint"] == "offline-pc"
    binding = LicenseIpBinding.objects.get(license=license)
    assert (binding.machine_id, binding.hostname, binding.is_active) == ("offline-pc", "plant-7", True)
    # The response answers this request only, and cannot be altered.
    other = activation_request(license_key=license.license_key, fingerprint="offline-pc")
    with pytest.raises(CertificateInvalid) as refused:
        activation_response_verify(response.json(), request=other, keys=keys)
    assert refused.value.code == "NONCE_MISMATCH"
    forged = {**response.json(), "payload": response.json()["payload"][:-2] + "xx"}
    with pytest.raises(CertificateInvalid) as refused:
        activation_response_verify(forged, request=request, keys=keys)
    assert refused.value.code == "BAD_SIGNATURE"


def test_an_offline_activation_counts_seats(license):
    _post("activate", {"key": license.license_key, "fingerprint": "online-pc"})
    request = activation_request(license_key=license.license_key, fingerprint="offline-pc")
    response = _owner_client(license, User.Role.ADMIN).post(
        "/api/v1/licenses/offline-activations", {"request": request}, format="json"
    )
    claims = activation_response_verify(response.json(), request=request, keys=_public_keys())
    assert (claims["valid"], claims["code"], claims["license_file"]) == (False, "TOO_MANY_MACHINES", None)
    assert not LicenseIpBinding.objects.filter(machine_id="offline-pc").exists()


def test_only_owners_and_admins_of_the_licenses_organization_activate_offline(license):
    request = activation_request(license_key=license.license_key, fingerprint="offline-pc")
    member = _owner_client(license, User.Role.MEMBER)
    assert member.post("/api/v1/licenses/offline-activations", {"request": request}, format="json").status_code == 403
    stranger = _owner_client(f.LicenseFactory())
    response = stranger.post("/api/v1/licenses/offline-activations", {"request": request}, format="json")
    assert (response.status_code, response.json()["error"]["code"]) == (404, "license_not_found")
    assert not LicenseIpBinding.objects.exists()


@pytest.mark.parametrize(
    "request_file",
    [
        "not json",
        5,
        {"format": "something-else"},
        {"format": "celaest-activation-request/1", "key": "k", "nonce": "n"},
        {"format": "celaest-activation-request/1", "key": "k", "nonce": "n", "fingerprint": "f" * 256},
        {"format": "celaest-activation-request/1", "key": ["k"], "nonce": "n", "fingerprint": "f"},
    ],
)
def test_malformed_request_files_are_400(license, request_file):
    response = _owner_client(license).post(
        "/api/v1/licenses/offline-activations", {"request": request_file}, format="json"
    )
    assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid")
