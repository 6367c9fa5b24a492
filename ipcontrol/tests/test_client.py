"""The client library vendors ship (``ipcontrol/client.py``), against a live server: activate,
validate with entitlements, heartbeats from its background thread, deactivate, and offline
certificates, license files and air-gapped activation verified with the public keys alone. It
must stay standalone: no Django, nothing of this project."""

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from ipcontrol import client as lib
from ipcontrol.buffer import validation_buffer_flush
from ipcontrol.models import LicenseIpBinding, LicenseValidation
from licensing.models import MachineScheme
from settings_app.services.api_keys import api_key_create
from tests import factories as f

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

CLIENT_FILE = Path(lib.__file__)


def test_the_client_is_one_standalone_file():
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('celaest_license', {str(CLIENT_FILE)!r})\n"
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
        "assert not [name for name in sys.modules if name.split('.')[0] in "
        "('django', 'rest_framework', 'celaest', 'ipcontrol', 'licensing')], 'imports the server'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd="/")  # noqa: S603


@pytest.fixture
def license():
    plan = f.SubscriptionPlanFactory(
        limits={"max_machines": 1},
        features=["export"],
        machine_scheme=MachineScheme.FLOATING,
        heartbeat_window_seconds=60,
    )
    return f.LicenseFactory(plan=plan)


def test_online_use_against_a_live_server(live_server, license):
    client = lib.LicenseClient(live_server.url, key=license.license_key, fingerprint="pc-1", hostname="till")
    assert client.validate()["code"] == "NO_MACHINE"
    assert client.activate()["code"] == "ACTIVATED"
    assert client.validate(entitlements=["export"])["code"] == "VALID"
    missing = client.validate(entitlements=["export", "gpu"])
    assert (missing["code"], missing["missing_entitlements"]) == ("ENTITLEMENTS_MISSING", ["gpu"])
    other = lib.LicenseClient(live_server.url, key=license.license_key, fingerprint="pc-2")
    assert other.activate()["code"] == "TOO_MANY_MACHINES"

    client.start_heartbeats(interval=0.2)
    time.sleep(1.2)
    client.stop_heartbeats()
    assert client.last_heartbeat["code"] == "ALIVE" and client.last_heartbeat["lease_expires_at"]
    validation_buffer_flush()
    beats = LicenseValidation.objects.filter(license=license, result_code="ALIVE").count()
    assert beats >= 4
    assert LicenseIpBinding.objects.get(machine_id="pc-1").last_heartbeat_at is not None

    keys = lib.public_keys_from_document(client.public_keys())
    claims = lib.verify_certificate(client.checkout()["certificate"], fingerprint="pc-1", keys=keys)
    assert claims["license_id"] == str(license.pk) and claims["entitlements"] == ["export"]
    opened = lib.open_license_file(
        client.license_file()["license_file"], license_key=license.license_key, fingerprint="pc-1", keys=keys
    )
    assert opened["entitlements"] == ["export"]
    with pytest.raises(lib.VerificationError) as refused:
        lib.verify_certificate(client.checkout()["certificate"], fingerprint="pc-2", keys=keys)
    assert refused.value.code == "FINGERPRINT_MISMATCH"

    assert client.deactivate()["code"] == "DEACTIVATED"
    assert other.activate()["code"] == "ACTIVATED"
    with pytest.raises(lib.LicenseServerError) as malformed:
        lib.LicenseClient(live_server.url, key="", fingerprint="pc-1").validate()
    assert malformed.value.status == 400


def test_air_gapped_activation_against_a_live_server(live_server, license):
    owner = f.UserFactory(organization=license.organization, role="owner")
    raw_key = api_key_create(user=owner, name="uploads", scopes=["*"]).raw_key
    # On the offline machine: the request file.
    request = lib.activation_request(license_key=license.license_key, fingerprint="vault-pc", hostname="vault")
    # A person uploads it from a connected computer.
    upload = urllib.request.Request(  # noqa: S310 - the live test server
        f"{live_server.url}/api/v1/licenses/offline-activations",
        data=json.dumps({"request": json.dumps(request)}).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {raw_key}"},
    )
    with urllib.request.urlopen(upload, timeout=10) as answer:  # noqa: S310
        response_file = answer.read().decode()
    public_keys = lib.LicenseClient(live_server.url, key="", fingerprint="").public_keys()
    # Back on the offline machine, with the public keys it shipped with.
    keys = lib.public_keys_from_document(public_keys)
    claims = lib.verify_activation_response(response_file, request=request, keys=keys)
    assert (claims["valid"], claims["code"]) == (True, "ACTIVATED")
    opened = lib.open_license_file(
        claims["license_file"], license_key=license.license_key, fingerprint="vault-pc", keys=keys
    )
    assert opened["license_id"] == str(license.pk)
    assert LicenseIpBinding.objects.get(license=license).machine_id == "vault-pc"
