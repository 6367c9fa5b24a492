"""Which license pays for an API key's AI gateway calls (operations.ai_licenses) and the API that
chooses it (operations/api/ai_license.py)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditLog
from celaest.errors import InvalidInput, PaymentRequired
from identity.models import User
from licensing.models import License
from operations.ai_licenses import ai_license_designate, api_key_license_bind, paying_license
from operations.models import ApiKeyLicense, OrganizationAILicense
from tests import factories as f
from tests.clients import client_as

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner():
    return f.UserFactory(role=User.Role.OWNER)


def license_of(owner, **kwargs):
    return f.LicenseFactory(organization=owner.organization, **kwargs)


def key_of(user):
    return f.UserApiKeyFactory(user=user)


# -- the choice ----------------------------------------------------------------------------------


def test_a_trial_is_never_picked_over_a_paid_license(owner):
    paid = license_of(owner, issued_at=timezone.now() - timedelta(days=30))
    license_of(owner, status=License.Status.TRIAL)  # newer
    assert paying_license(user=owner, api_key=key_of(owner)) == paid


def test_a_trial_pays_when_no_paid_license_is_live(owner):
    trial = license_of(owner, status=License.Status.TRIAL)
    license_of(owner, status=License.Status.SUSPENDED)
    assert paying_license(user=owner, api_key=None) == trial


def test_the_designated_license_pays_even_a_trial_when_chosen(owner):
    license_of(owner)
    trial = license_of(owner, status=License.Status.TRIAL)
    ai_license_designate(organization=owner.organization, license=trial, actor=owner)
    assert paying_license(user=owner, api_key=key_of(owner)) == trial


def test_a_bound_key_pays_with_its_license_over_the_designated_one(owner):
    designated, bound = license_of(owner), license_of(owner)
    ai_license_designate(organization=owner.organization, license=designated, actor=owner)
    api_key, other_key = key_of(owner), key_of(owner)
    api_key_license_bind(api_key=api_key, license=bound, actor=owner)
    assert paying_license(user=owner, api_key=api_key) == bound
    assert paying_license(user=owner, api_key=other_key) == designated
    api_key_license_bind(api_key=api_key, license=None, actor=owner)  # unbound: the designated one again
    assert paying_license(user=owner, api_key=api_key) == designated


def test_a_chosen_license_that_lapsed_refuses_instead_of_charging_another(owner):
    license_of(owner)  # a live paid license that was not chosen
    bound = license_of(owner)
    api_key = key_of(owner)
    api_key_license_bind(api_key=api_key, license=bound, actor=owner)
    License.objects.filter(pk=bound.pk).update(status=License.Status.SUSPENDED)
    with pytest.raises(PaymentRequired) as refused:
        paying_license(user=owner, api_key=api_key)
    assert refused.value.code == "license_inactive"
    assert refused.value.details["chosen_by"] == "api_key"
    assert refused.value.status_code == 402


def test_no_live_license_is_the_existing_402(owner):
    license_of(owner, expires_at=timezone.now() - timedelta(minutes=1))
    with pytest.raises(PaymentRequired) as refused:
        paying_license(user=owner, api_key=None)
    assert refused.value.code == "no_active_license"


def test_another_organizations_license_cannot_be_bound_or_designated(owner):
    stranger = f.LicenseFactory()
    with pytest.raises(InvalidInput) as refused:
        api_key_license_bind(api_key=key_of(owner), license=stranger, actor=owner)
    assert refused.value.code == "license_not_in_organization"
    with pytest.raises(InvalidInput):
        ai_license_designate(organization=owner.organization, license=stranger, actor=owner)
    assert not ApiKeyLicense.objects.exists() and not OrganizationAILicense.objects.exists()


def test_choices_are_audited(owner):
    license = license_of(owner)
    ai_license_designate(organization=owner.organization, license=license, actor=owner)
    row = AuditLog.objects.get(resource_id=str(owner.organization_id))
    assert row.changes["ai_license"] == [None, str(license.pk)]
    assert row.user == owner


# -- the API -------------------------------------------------------------------------------------


def test_members_read_the_choice_but_only_owners_and_admins_change_it(owner):
    license = license_of(owner)
    member = f.UserFactory(organization=owner.organization, role=User.Role.MEMBER)
    body = {"license": str(license.pk)}
    assert client_as(member).get("/api/v1/ai-license").status_code == 200
    refused = client_as(member).put("/api/v1/ai-license", body, format="json")
    assert refused.status_code == 403
    assert not OrganizationAILicense.objects.exists()
    admin = f.UserFactory(organization=owner.organization, role=User.Role.ADMIN)
    assert client_as(admin).put("/api/v1/ai-license", body, format="json").status_code == 200
    assert OrganizationAILicense.objects.get().license == license
    cleared = client_as(owner).put("/api/v1/ai-license", {"license": None}, format="json")
    assert cleared.status_code == 200 and cleared.json()["license"] is None
    assert not OrganizationAILicense.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "license"),
        ({"license": "not-a-uuid"}, "license"),
        ({"license": "00000000-0000-4000-8000-000000000000"}, "license"),
        ({"license": 12}, "license"),
    ],
)
def test_a_bad_choice_is_a_400(owner, body, field):
    response = client_as(owner).put("/api/v1/ai-license", body, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert field in response.json()["error"]["details"]


def test_a_lapsed_license_cannot_be_chosen(owner):
    lapsed = license_of(owner, status=License.Status.EXPIRED)
    response = client_as(owner).put("/api/v1/ai-license", {"license": str(lapsed.pk)}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "license_inactive"


def test_an_owner_binds_a_members_key_and_the_member_sees_it(owner):
    member = f.UserFactory(organization=owner.organization, role=User.Role.MEMBER)
    api_key, license = key_of(member), license_of(owner)
    url = f"/api/v1/ai-license/keys/{api_key.pk}"
    assert client_as(member).put(url, {"license": str(license.pk)}, format="json").status_code == 403
    assert client_as(owner).put(url, {"license": str(license.pk)}, format="json").status_code == 200
    seen = client_as(member).get(url).json()
    assert seen == {"api_key": str(api_key.pk), "license": str(license.pk), "paying_license": str(license.pk)}
    assert client_as(owner).get("/api/v1/ai-license/keys/00000000-0000-4000-8000-000000000000").status_code == 404
    assert client_as(owner).get("/api/v1/ai-license/keys/not-a-key").status_code == 404


def test_the_admin_lists_both_choices_and_refuses_a_strangers_license(owner, staff, client):
    license = license_of(owner)
    api_key_license_bind(api_key=key_of(owner), license=license, actor=owner)
    client.force_login(staff)
    page = client.get("/admin/operations/apikeylicense/")
    assert page.status_code == 200 and license.license_key.encode() in page.content

    stranger = f.LicenseFactory()
    body = {"organization": str(owner.organization_id), "license": str(stranger.pk)}
    refused = client.post("/admin/operations/organizationailicense/add/", body)
    assert refused.status_code == 200 and b"not one of this organization" in refused.content
    assert not OrganizationAILicense.objects.exists()
    body["license"] = str(license.pk)
    assert client.post("/admin/operations/organizationailicense/add/", body).status_code == 302
    assert OrganizationAILicense.objects.get().license == license
    assert client.get("/admin/operations/organizationailicense/").status_code == 200
    # a key's binding changed from its page (the key itself read-only there)
    binding, other = ApiKeyLicense.objects.get(), license_of(owner)
    url = f"/admin/operations/apikeylicense/{binding.pk}/change/"
    assert client.post(url, {"license": str(stranger.pk)}).status_code == 200
    assert client.post(url, {"license": str(other.pk)}).status_code == 302
    assert ApiKeyLicense.objects.get().license == other
