"""Every offline document issued is recorded once (offline_certificates): a checked-out
certificate, an encrypted license file and an air-gapped activation's file, with the license,
machine and expiry the document carries; refusals record nothing; staff see a license's own
records on its page and in a read-only admin."""

import base64
import json
import re
from datetime import datetime

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from identity.models import User
from ipcontrol.certificates import document_sha256
from ipcontrol.models import OfflineCertificate
from ipcontrol.offline import activation_request, activation_response_verify, license_file_issue
from tests import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def license():
    return f.LicenseFactory()


def _post(route, payload):
    response = APIClient().post(f"/api/v1/licenses/{route}", payload, format="json", REMOTE_ADDR="203.0.113.3")
    assert response.status_code == 200, response.content
    return response.json()


def _claims(certificate: dict) -> dict:
    payload = certificate["payload"]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_a_checkout_records_one_certificate_with_its_license_and_expiry(license):
    _post("activate", {"key": license.license_key, "fingerprint": "fp-1"})
    certificate = _post("checkout", {"key": license.license_key, "fingerprint": "fp-1"})["certificate"]
    claims = _claims(certificate)
    record = OfflineCertificate.objects.get()
    assert (record.license_id, record.organization_id) == (license.pk, license.organization_id)
    assert (record.kind, record.fingerprint, record.key_id) == ("certificate", "fp-1", certificate["kid"])
    assert record.issued_at == _moment(claims["issued_at"]) and record.expires_at == _moment(claims["expires_at"])
    assert record.document_sha256 == document_sha256(certificate)
    assert record.issued_by is None and record.ip_address == "203.0.113.3"  # the software, by its key
    assert certificate["signature"] not in json.dumps(list(OfflineCertificate.objects.values()), default=str)


def test_a_license_file_is_recorded_as_one(license):
    _post("activate", {"key": license.license_key, "fingerprint": "fp"})
    document = _post("license-file", {"key": license.license_key, "fingerprint": "fp"})["license_file"]
    record = OfflineCertificate.objects.get()
    assert (record.license_id, record.kind, record.document_sha256) == (
        license.pk,
        "license_file",
        document_sha256(document),
    )


def test_refused_checkouts_record_nothing(license):
    assert _post("checkout", {"key": license.license_key, "fingerprint": "never-activated"})["certificate"] is None
    assert _post("license-file", {"key": license.license_key, "fingerprint": "never-activated"})["license_file"] is None
    assert not OfflineCertificate.objects.exists()


def test_an_air_gapped_activation_records_its_file_and_who_uploaded_it(license):
    owner = f.UserFactory(organization=license.organization, role=User.Role.OWNER)
    client = APIClient()
    client.force_authenticate(owner)
    request = activation_request(license_key=license.license_key, fingerprint="offline-pc", hostname="plant-7")
    response = client.post("/api/v1/licenses/offline-activations", {"request": request}, format="json")
    assert response.status_code == 200, response.content
    claims = activation_response_verify(response.json(), request=request)
    record = OfflineCertificate.objects.get()
    assert (record.license_id, record.kind, record.fingerprint, record.issued_by) == (
        license.pk,
        "air_gapped",
        "offline-pc",
        owner,
    )
    assert record.document_sha256 == document_sha256(claims["license_file"])


def test_the_record_is_part_of_the_issuance(license, monkeypatch):
    """A document that could not be recorded is not handed out."""

    def refuse(*args, **kwargs):
        raise RuntimeError("database down")

    monkeypatch.setattr(OfflineCertificate.objects, "create", refuse)
    with pytest.raises(RuntimeError):
        license_file_issue(license=license, fingerprint="fp", now=license.created_at, ttl_hours=1)


@pytest.fixture
def staff_client(client):
    client.force_login(f.StaffUserFactory())
    return client


def test_the_license_page_lists_its_own_certificates_only(staff_client, license):
    other = f.LicenseFactory()  # another organization's
    f.LicenseIpBindingFactory(license=license, machine_id="ours-1", hostname="OURS-PC")
    f.OfflineCertificateFactory(license=license, fingerprint="ours-1")
    f.OfflineCertificateFactory(license=other, fingerprint="theirs-1")
    page = staff_client.get(reverse("admin:licensing_license_change", args=[license.pk]))
    assert page.status_code == 200
    panel = next(panel for panel in page.context["celaest_panels"] if panel.title == "Offline certificates issued")
    shown = " ".join(str(cell) for row in panel.rows for cell in row)
    assert len(panel.rows) == 1 and "ours-1" in shown and "OURS-PC" in shown and "theirs-1" not in shown
    assert re.search(r"in [23]\sdays", shown)  # the expiry, humanised


def test_the_admin_reads_but_never_writes_certificates(staff_client, license):
    record = f.OfflineCertificateFactory(license=license)
    change = reverse("admin:ipcontrol_offlinecertificate_change", args=[record.pk])
    page = staff_client.get(change)
    assert page.status_code == 200 and 'name="_save"' not in page.text
    assert staff_client.get(reverse("admin:ipcontrol_offlinecertificate_add")).status_code == 403
    assert staff_client.post(reverse("admin:ipcontrol_offlinecertificate_delete", args=[record.pk])).status_code == 403
    listing = staff_client.get(reverse("admin:ipcontrol_offlinecertificate_changelist"), {"q": license.license_key})
    assert listing.status_code == 200 and list(listing.context["cl"].result_list) == [record]
