"""Cross-tenant tests of every route the router battery does not cover by itself (the views
outside the routers and the list-level actions, declared in tests/api_registry.py ``DECLARED``).

Two organizations, A and B, each with its owner, API key and license. Whatever B sends through a
route, it never sees or changes A's data, and what it does is counted against B. Each test names
the routes it covers (``@covers``); ``test_every_declared_route_has_its_tenancy_test`` fails when a
route is declared with a tenancy and no test here holds it to it."""

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail, signing
from django.utils import timezone
from rest_framework.test import APIClient

from aimesh.models import Prompt
from aimesh.testing import ai_model, fake_provider, pool_key, provider  # noqa: F401 - fixtures
from analytics.models import RoiMetric, TelemetryEvent
from billing.models import Order
from billing.tests.stripe_server import FakeStripe, signed_event
from identity.models import Organization, User
from identity.services import member_invite
from ipcontrol.buffer import validation_buffer_flush
from ipcontrol.models import LicenseIpBinding, LicenseValidation
from licensing.models import License, LicenseUsageLog
from marketplace.models import AssetDownload, CustomerAsset, ProductRelease
from operations.models import ApiKeyLicense, OrganizationAILicense, ProcessedTask
from settings_app.models import UserSession
from settings_app.services.api_keys import api_key_create
from tests import factories as f
from tests.api_registry import DECLARED, GLOBAL
from tests.clients import client_as

pytestmark = pytest.mark.django_db

#: route template -> the tests that hold it to its declared tenancy
COVERED: dict[str, list[str]] = {}


def covers(*templates):
    def register(test):
        for template in templates:
            COVERED.setdefault(template, []).append(test.__name__)
        return test

    return register


def test_every_declared_route_has_its_tenancy_test():
    """A tenant-scoped route, or a global one with parameters (the generic battery can only
    compare the answers of routes it can call as they are), needs a test here."""
    needs_a_test = {t for t, access in DECLARED.items() if access.tenancy != GLOBAL or "{" in t}
    assert sorted(needs_a_test - set(COVERED)) == [], "declared without a cross-tenant test"
    assert sorted(set(COVERED) - set(DECLARED)) == [], "tests name routes that are not declared"


# --- two tenants ---------------------------------------------------------------------------------


class Tenant:
    def __init__(self, slug):
        self.org = f.OrganizationFactory(slug=slug, name=f"Tenant {slug}", max_users=20)
        self.owner = f.UserFactory(organization=self.org, role=User.Role.OWNER)
        plan = f.SubscriptionPlanFactory(limits={"max_machines": 3, "ai_requests_per_month": 100})
        self.license = f.LicenseFactory(organization=self.org, plan=plan)

    def key(self, scopes=("*",), user=None) -> APIClient:
        raw = api_key_create(user=user or self.owner, name="tenancy", scopes=list(scopes)).raw_key
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
        return client


@pytest.fixture
def a():
    return Tenant("tenant-a")


@pytest.fixture
def b():
    return Tenant("tenant-b")


def _state(row):
    return type(row)._base_manager.filter(pk=row.pk).values().get()


# --- identity ------------------------------------------------------------------------------------


@covers("/api/v1/me")
def test_me_is_the_caller_and_changes_only_the_caller(a, b):
    a_before = _state(a.owner)
    client = b.key(["me:write"])
    me = client.get("/api/v1/me").json()
    assert (me["id"], me["organization"]["id"]) == (str(b.owner.pk), str(b.org.pk))

    hostile = {"first_name": "Mallory", "id": str(a.owner.pk), "email": a.owner.email, "role": "owner",
               "organization": {"id": str(a.org.pk)}}  # fmt: skip
    response = client.patch("/api/v1/me", hostile, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["id"] == str(b.owner.pk)
    b.owner.refresh_from_db()
    assert (b.owner.first_name, b.owner.email, b.owner.organization_id) == ("Mallory", me["email"], b.org.pk)
    assert _state(a.owner) == a_before


@covers("/api/v1/organization")
def test_organization_is_the_callers_own_and_only_it_changes(a, b):
    a_before = _state(a.org)
    client = b.key(["organization:write"])
    assert client.get("/api/v1/organization").json()["id"] == str(b.org.pk)

    response = client.patch(
        "/api/v1/organization", {"id": str(a.org.pk), "slug": a.org.slug, "name": "Renamed"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert (response.json()["id"], response.json()["slug"]) == (str(b.org.pk), "tenant-b")
    assert Organization.objects.get(pk=b.org.pk).name == "Renamed"
    assert _state(a.org) == a_before
    # a member of A reading it still gets A
    assert a.key(["organization:read"]).get("/api/v1/organization").json()["name"] == "Tenant tenant-a"


@covers("/api/v1/invitations/accept")
def test_an_invitation_joins_the_organization_that_signed_it_and_no_other(a, b, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        member_invite(organization=a.org, actor=a.owner, email="new@example.com")
        member_invite(organization=a.org, actor=a.owner, email=b.owner.email)  # B's owner's address
    new_token, b_token = (message.body.strip().splitlines()[-1] for message in mail.outbox[-2:])

    accepted = APIClient().post("/api/v1/invitations/accept", {"token": new_token}, format="json")
    assert accepted.status_code == 201, accepted.content
    assert accepted.json()["organization"]["id"] == str(a.org.pk)
    assert User.objects.get(email="new@example.com").organization_id == a.org.pk

    # A cannot pull B's owner (and their data) over by inviting their address
    moved = APIClient().post("/api/v1/invitations/accept", {"token": b_token}, format="json")
    assert moved.status_code == 409 and moved.json()["error"]["code"] == "email_in_use"
    assert User.objects.get(pk=b.owner.pk).organization_id == b.org.pk

    # an invitation cannot be pointed at another organization
    claims = {**signing.loads(new_token, salt="identity.member-invitation"), "o": str(b.org.pk), "e": "x@example.com"}
    _, *signature = new_token.split(":")
    for forged in (
        signing.dumps(claims, salt="another-purpose"),  # signed, but for something else
        ":".join([signing.dumps(claims, salt="identity.member-invitation").split(":")[0], *signature]),  # swapped
    ):
        response = APIClient().post("/api/v1/invitations/accept", {"token": forged}, format="json")
        assert response.status_code == 400 and response.json()["error"]["code"] == "invitation_invalid"
    assert not User.objects.filter(organization=b.org).exclude(pk=b.owner.pk).exists()


# --- settings: flags and sessions ----------------------------------------------------------------


@covers("/api/v1/flags")
def test_flags_are_evaluated_for_the_caller_and_reveal_no_targets(a, b):
    f.FeatureFlagFactory(flag_key="for-a", is_enabled=True, target_type="organizations", target_ids=[str(a.org.pk)])
    f.FeatureFlagFactory(flag_key="for-a-owner", is_enabled=True, target_type="users", target_ids=[str(a.owner.pk)])
    f.FeatureFlagFactory(flag_key="for-b", is_enabled=True, target_type="organizations", target_ids=[str(b.org.pk)])
    f.FeatureFlagFactory(flag_key="everyone", is_enabled=True, target_type="all")

    flags_a = a.key(["flags:read"]).get("/api/v1/flags")
    flags_b = b.key(["flags:read"]).get("/api/v1/flags")
    assert flags_a.json()["flags"] == {"everyone": True, "for-a": True, "for-a-owner": True, "for-b": False}
    assert flags_b.json()["flags"] == {"everyone": True, "for-a": False, "for-a-owner": False, "for-b": True}
    assert str(a.org.pk).encode() not in flags_b.content and str(a.owner.pk).encode() not in flags_b.content


@covers("/api/v1/sessions/revoke-others")
def test_revoking_my_other_sessions_leaves_everyone_elses(a, b):
    colleague = f.UserFactory(organization=b.org, role=User.Role.MEMBER)
    theirs = [f.UserSessionFactory(user=a.owner), f.UserSessionFactory(user=colleague)]
    mine = [f.UserSessionFactory(user=b.owner) for _ in range(2)]

    response = b.key(["sessions:write"]).post("/api/v1/sessions/revoke-others", {}, format="json")
    assert response.status_code == 200 and response.json()["revoked"] == 2
    assert not UserSession.objects.filter(pk__in=[s.pk for s in mine], is_active=True).exists()
    assert UserSession.objects.filter(pk__in=[s.pk for s in theirs], is_active=True).count() == 2


# --- marketplace ---------------------------------------------------------------------------------


@pytest.fixture
def product_of_a(a):
    """A product A owns (an asset) and B does not, with a file to download."""
    product = f.ProductFactory(slug="tool-of-a")
    for version in ("1.0.0", "2.0.0"):
        f.ProductReleaseFactory(
            product=product, version=version, download_url=f"https://downloads.example/tool-{version}.zip"
        )
    f.ProductReleaseFactory(product=product, version="3.0.0", status=ProductRelease.Status.DRAFT)
    asset = f.CustomerAssetFactory(organization=a.org, user=a.owner, product=product)
    return product, asset


@covers("/api/v1/products/{slug}/releases/latest")
def test_latest_release_is_the_public_catalogue_and_downloads_stay_with_the_owner(a, b, product_of_a):
    product, asset = product_of_a
    url = "/api/v1/products/tool-of-a/releases/latest?current=1.0.0"
    seen_by_a = a.key(["products:read"]).get(url)
    seen_by_b = b.key(["products:read"]).get(url)
    assert seen_by_b.status_code == 200 and seen_by_b.json() == seen_by_a.json()
    assert seen_by_b.json()["latest"]["version"] == "2.0.0" and seen_by_b.json()["upgrade_available"] is True
    assert b"downloads.example" not in seen_by_b.content  # the file is reached through an owned asset only

    # B, who owns no asset of it, gets no link to it: A's asset is not B's
    response = b.key(["assets:write"]).post(f"/api/v1/assets/{asset.pk}/download", {}, format="json")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    assert not CustomerAsset.objects.filter(organization=b.org).exists()

    product.status = "draft"
    product.save()
    hidden = b.key(["products:read"]).get(url)
    assert hidden.status_code == 404 and hidden.json()["error"]["code"] == "not_found"


@covers("/api/v1/assets/{asset_id}/download/{token}")
def test_a_download_link_is_good_for_its_asset_only_and_is_logged_against_its_owner(a, b, product_of_a):
    product, asset_a = product_of_a
    link_a = a.key(["assets:write"]).post(f"/api/v1/assets/{asset_a.pk}/download", {}, format="json")
    assert link_a.status_code == 200, link_a.content
    path_a = link_a.json()["url"].removeprefix("http://testserver")

    other = f.ProductFactory(slug="tool-of-b")
    other_release = f.ProductReleaseFactory(product=other, version="1.0.0", download_url="https://downloads.example/b")
    asset_b = f.CustomerAssetFactory(organization=b.org, user=b.owner, product=other)
    client_b = b.key(["assets:write"])

    # B's asset cannot be used to download a release of A's product
    a_release = ProductRelease.objects.get(product=product, version="2.0.0")
    refused = client_b.post(f"/api/v1/assets/{asset_b.pk}/download", {"release": str(a_release.pk)}, format="json")
    assert refused.status_code == 404 and refused.json()["error"]["code"] == "no_release"

    # B's own link, pointed at A's asset, is refused and logs nothing
    link_b = client_b.post(f"/api/v1/assets/{asset_b.pk}/download", {}, format="json").json()
    token_b = link_b["url"].rstrip("/").rsplit("/", 1)[-1]
    for client in (client_b, APIClient()):
        response = client.get(f"/api/v1/assets/{asset_a.pk}/download/{token_b}")
        assert response.status_code == 403 and response.json()["error"]["code"] == "download_link_invalid"
    assert not AssetDownload.objects.exists()

    # A's link is a bearer token (README, "Downloads"): whoever follows it, the download is A's
    followed = client_b.get(path_a)
    assert followed.status_code == 302 and followed["Location"] == "https://downloads.example/tool-2.0.0.zip"
    download = AssetDownload.objects.get()
    assert (download.asset_id, download.user_id) == (asset_a.pk, a.owner.pk)
    assert other_release.downloads.count() == 0
    logged = {t: t.key(["asset-downloads:read"]).get("/api/v1/asset-downloads").json()["results"] for t in (a, b)}
    assert [row["id"] for row in logged[a]] == [str(download.pk)] and logged[b] == []


# --- billing: the Stripe webhook -----------------------------------------------------------------

STRIPE_KEY, STRIPE_SECRET = "sk_test_tenancy", "whsec_tenancy"


@covers("/api/v1/billing/stripe/webhook")
def test_a_verified_payment_pays_the_order_it_was_made_for_and_no_other(a, b, settings):
    f.PaymentGatewayFactory(code="stripe", name="Card", provider="stripe", fee_percentage=Decimal("2.90"))
    product = f.ProductFactory(price=Decimal("40.00"))
    with FakeStripe(STRIPE_KEY) as stripe_api:
        settings.STRIPE_API_KEY, settings.STRIPE_API_BASE = STRIPE_KEY, stripe_api.url
        settings.STRIPE_WEBHOOK_SECRET = STRIPE_SECRET
        body = {"items": [{"product": str(product.pk)}], "gateway": "stripe"}
        order_a = client_as(a.owner).post("/api/v1/orders", body, format="json").json()
        order_b = client_as(b.owner).post("/api/v1/orders", body, format="json").json()
        paid_intent = stripe_api.succeed(order_a["payment"]["reference"])  # A paid; B did not

        def deliver(obj):
            payload, signature = signed_event("payment_intent.succeeded", obj, secret=STRIPE_SECRET)
            response = APIClient().post(
                "/api/v1/billing/stripe/webhook", payload, content_type="application/json",
                HTTP_STRIPE_SIGNATURE=signature,
            )  # fmt: skip
            assert response.status_code == 200, response.content
            return response.json()["outcome"]

        # A's payment, presented as paying B's order (same amount), is checked back with Stripe
        naming_b = dict(paid_intent, metadata={"order_id": order_b["id"], "order_number": order_b["order_number"]})
        assert deliver(naming_b) == "refused: payment does not match the order"
        assert Order.objects.get(pk=order_b["id"]).status == "pending"

        assert deliver(paid_intent) == "paid"
    assert Order.objects.get(pk=order_a["id"]).status == "paid"
    assert Order.objects.get(pk=order_b["id"]).status == "pending"
    assert CustomerAsset.objects.filter(organization=b.org).count() == 0
    assert CustomerAsset.objects.filter(organization=a.org).count() == 1


# --- analytics -----------------------------------------------------------------------------------


@covers("/api/v1/roi-metrics/export", "/api/v1/roi-metrics/summary")
def test_roi_export_and_summary_hold_the_callers_figures_only(a, b):
    month = timezone.localdate().replace(day=1)
    mine = f.RoiMetricFactory(organization=b.org, period_type=RoiMetric.PeriodType.MONTH, period_start=month,
                              tasks_completed=7)  # fmt: skip
    theirs = f.RoiMetricFactory(organization=a.org, period_type=RoiMetric.PeriodType.MONTH, period_start=month,
                                tasks_completed=1000)  # fmt: skip
    client = b.key(["roi-metrics:read"])

    export = client.get("/api/v1/roi-metrics/export")
    assert export.status_code == 200
    rows = list(csv.DictReader(io.StringIO(b"".join(export.streaming_content).decode())))
    assert [row["id"] for row in rows] == [str(mine.pk)]
    assert str(theirs.pk) not in {row["id"] for row in rows}

    summary = client.get("/api/v1/roi-metrics/summary")
    assert summary.status_code == 200 and summary.json()["this_month"]["tasks_completed"] == 7


@covers("/api/v1/telemetry/batch")
def test_telemetry_lands_in_the_callers_organization_whatever_the_payload_says(a, b):
    event = {"event_type": "page.view", "event_name": "dashboard", "organization": str(a.org.pk),
             "user": str(a.owner.pk), "organization_id": str(a.org.pk), "user_id": str(a.owner.pk)}  # fmt: skip
    response = b.key(["telemetry:write"]).post("/api/v1/telemetry/batch", {"events": [event]}, format="json")
    assert response.status_code == 201 and response.json()["accepted"] == 1
    stored = TelemetryEvent.objects.get()
    assert (stored.organization_id, stored.user_id) == (b.org.pk, b.owner.pk)
    assert a.key().get("/api/v1/telemetry").json()["results"] == []


# --- the public license endpoints ----------------------------------------------------------------

LICENSE_ROUTES = ("validate", "activate", "deactivate", "checkout", "heartbeat", "license-file")


def _license_call(route, key, fingerprint):
    response = APIClient().post(
        f"/api/v1/licenses/{route}", {"key": key, "fingerprint": fingerprint, "hostname": "ws", "nonce": "n"},
        format="json", REMOTE_ADDR="203.0.113.9",
    )  # fmt: skip
    assert response.status_code == 200, response.content
    return response.json()


@covers(*(f"/api/v1/licenses/{route}" for route in LICENSE_ROUTES))
def test_a_license_key_acts_on_its_own_license_only(a, b):
    key_a, key_b = a.license.license_key, b.license.license_key
    assert _license_call("activate", key_b, "machine-of-b")["code"] == "ACTIVATED"
    validation_buffer_flush()
    binding_b = LicenseIpBinding.objects.get(license=b.license)
    b_before, attempts_of_b = _state(binding_b), LicenseValidation.objects.filter(organization=b.org).count()

    # A's key on B's machine: A's license answers, and knows nothing of B's seat
    for route in ("validate", "checkout", "deactivate", "heartbeat", "license-file"):
        body = _license_call(route, key_a, "machine-of-b")
        assert (body["code"], body["license"]["id"]) == ("NO_MACHINE", str(a.license.pk)), route
        assert body["license"]["active_machines"] in (None, 0)
        assert body.get("certificate") is None and body.get("license_file") is None
    activated = _license_call("activate", key_a, "machine-of-b")  # takes a seat of A's license
    assert (activated["code"], activated["license"]["id"]) == ("ACTIVATED", str(a.license.pk))
    validation_buffer_flush()

    assert _state(binding_b) == b_before
    assert LicenseIpBinding.objects.get(license=a.license).organization_id == a.org.pk
    assert LicenseValidation.objects.filter(organization=b.org).count() == attempts_of_b
    recorded = LicenseValidation.objects.filter(organization=a.org)
    assert recorded.count() == 6 and set(recorded.values_list("license_id", flat=True)) == {a.license.pk}
    assert not recorded.filter(ip_binding=binding_b).exists()

    # B's machine is still B's, and A freeing its own seat leaves B's alone
    assert _license_call("validate", key_b, "machine-of-b")["code"] == "VALID"
    assert _license_call("heartbeat", key_b, "machine-of-b")["code"] == "ALIVE"
    assert _license_call("deactivate", key_a, "machine-of-b")["code"] == "DEACTIVATED"
    assert LicenseIpBinding.objects.get(pk=binding_b.pk).is_active
    assert _license_call("checkout", key_b, "machine-of-b")["certificate"] is not None


@covers("/api/v1/licenses/machine", "/api/v1/licenses/machine/deactivate")
def test_a_license_token_reaches_its_own_licenses_machines_only(a, b):
    from licensing.services import license_token_create

    machine_b = f.LicenseIpBindingFactory(license=b.license, machine_id="shared-fingerprint")
    machine_a = f.LicenseIpBindingFactory(license=a.license, machine_id="machine-of-a")
    _, raw_a = license_token_create(license=a.license, name="a's installer")
    token_a = APIClient()
    token_a.credentials(HTTP_AUTHORIZATION=f"License {raw_a}")
    before = _state(machine_b)
    for fingerprint in ("shared-fingerprint", "machine-of-a-nowhere"):
        assert token_a.get("/api/v1/licenses/machine", {"fingerprint": fingerprint}).status_code == 404
        body = {"fingerprint": fingerprint, "name": "taken over"}
        assert token_a.patch("/api/v1/licenses/machine", body, format="json").status_code == 404
        assert token_a.post("/api/v1/licenses/machine/deactivate", body, format="json").status_code == 404
    assert _state(machine_b) == before
    # B's owner's API key is no license token: it opens nothing here
    assert b.key().get("/api/v1/licenses/machine", {"fingerprint": "shared-fingerprint"}).status_code == 401
    assert token_a.get("/api/v1/licenses/machine", {"fingerprint": "machine-of-a"}).json()["id"] == str(machine_a.pk)


@covers("/api/v1/licenses/offline-activations")
def test_an_offline_activation_takes_a_seat_of_the_callers_own_license_only(a, b):
    from ipcontrol.offline import activation_request

    request_b = activation_request(license_key=b.license.license_key, fingerprint="offline-of-b")
    response = a.key().post("/api/v1/licenses/offline-activations", {"request": request_b}, format="json")
    assert (response.status_code, response.json()["error"]["code"]) == (404, "license_not_found")
    assert not LicenseIpBinding.objects.filter(license=b.license).exists()
    response = b.key().post("/api/v1/licenses/offline-activations", {"request": request_b}, format="json")
    assert response.status_code == 200
    assert LicenseIpBinding.objects.get(license=b.license).machine_id == "offline-of-b"


# --- which license pays for AI calls ----------------------------------------------------------------


@covers("/api/v1/ai-license")
def test_the_designated_ai_license_is_one_of_the_callers_organization(a, b):
    client = b.key(["ai-license:write"])
    refused = client.put("/api/v1/ai-license", {"license": str(a.license.pk)}, format="json")
    assert refused.status_code == 400 and "license" in refused.json()["error"]["details"]
    assert not OrganizationAILicense.objects.exists()

    second = f.LicenseFactory(organization=b.org)
    chosen = client.put("/api/v1/ai-license", {"license": str(second.pk)}, format="json")
    assert chosen.status_code == 200, chosen.content
    assert chosen.json() == {"license": str(second.pk), "paying_license": str(second.pk)}
    assert OrganizationAILicense.objects.get().organization_id == b.org.pk
    # A sees its own organization's (none), never B's
    assert a.key(["ai-license:read"]).get("/api/v1/ai-license").json() == {
        "license": None, "paying_license": str(a.license.pk),
    }  # fmt: skip


@covers("/api/v1/ai-license/keys/{key_id}")
def test_a_key_is_bound_only_to_its_organizations_licenses_by_its_organization(a, b):
    key_of_a = api_key_create(user=a.owner, name="a's").api_key
    key_of_b = api_key_create(user=b.owner, name="b's").api_key
    client = b.key(["ai-license:write"])
    # A's key is not B's to see or bind
    assert client.get(f"/api/v1/ai-license/keys/{key_of_a.pk}").status_code == 404
    body = {"license": str(b.license.pk)}
    assert client.put(f"/api/v1/ai-license/keys/{key_of_a.pk}", body, format="json").status_code == 404
    # B's key cannot be bound to A's license
    refused = client.put(f"/api/v1/ai-license/keys/{key_of_b.pk}", {"license": str(a.license.pk)}, format="json")
    assert refused.status_code == 400
    assert not ApiKeyLicense.objects.exists()

    bound = client.put(f"/api/v1/ai-license/keys/{key_of_b.pk}", body, format="json")
    assert bound.status_code == 200, bound.content
    expected = {"api_key": str(key_of_b.pk), "license": str(b.license.pk), "paying_license": str(b.license.pk)}
    assert bound.json() == expected
    assert ApiKeyLicense.objects.get().organization_id == b.org.pk


# --- the gateway ---------------------------------------------------------------------------------


@pytest.fixture
def gateway(provider):  # noqa: F811 - the fixture
    ai_model("gpt-4o-mini")
    ai_model("retired-model", is_active=False, is_default=False)
    pool_key(provider, "sk-tenancy")


def _completion(client):
    return client.post(
        "/v1/chat/completions", {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
        format="json",
    )  # fmt: skip


def _usage(license):
    return License.objects.get(pk=license.pk).ai_requests_used


@covers("/v1/chat/completions")
def test_a_completion_is_metered_on_the_callers_license_and_recorded_in_its_organization(a, b, gateway):
    response = _completion(b.key(["tasks:write"]))
    assert response.status_code == 200, response.content
    task = ProcessedTask.objects.get()
    assert (task.organization_id, task.license_id, task.user_id) == (b.org.pk, b.license.pk, b.owner.pk)
    assert response.json()["id"] == f"chatcmpl-{task.pk.hex}"
    assert (_usage(b.license), _usage(a.license)) == (1, 0)
    assert set(LicenseUsageLog.objects.values_list("license_id", flat=True)) == {b.license.pk}
    # the task is B's: A does not see it
    assert a.key(["tasks:read"]).get(f"/api/v1/tasks/{task.pk}").status_code == 404
    assert b.key(["tasks:read"]).get(f"/api/v1/tasks/{task.pk}").status_code == 200


@covers("/v1/chat/completions")
def test_an_organization_without_a_license_cannot_spend_another_ones(a, b, gateway):
    License.objects.filter(pk=b.license.pk).update(status=License.Status.SUSPENDED)
    response = _completion(b.key(["tasks:write"]))
    assert response.status_code == 402 and response.json()["error"]["code"] == "no_active_license"
    assert not ProcessedTask.objects.exists()
    assert _usage(a.license) == 0 and not LicenseUsageLog.objects.exists()


@covers("/api/v1/tasks")
def test_a_task_is_run_on_the_callers_license_and_listed_to_its_organization_only(a, b, gateway):
    Prompt.objects.create(
        slug="summarize", name="Summarize", system_prompt="You summarize.", user_template="Summarize: {{ text }}",
        variables=[{"name": "text"}], is_active=True,
    )  # fmt: skip
    body = {"prompt": "summarize", "variables": {"text": "The printer is on fire."}}
    response = b.key(["tasks:write"]).post("/api/v1/tasks", body, format="json")
    assert response.status_code == 200, response.content
    task = ProcessedTask.objects.get(pk=response.json()["id"])
    assert (task.organization_id, task.license_id, task.user_id) == (b.org.pk, b.license.pk, b.owner.pk)
    assert (_usage(b.license), _usage(a.license)) == (1, 0)

    listed = {t: [row["id"] for row in t.key(["tasks:read"]).get("/api/v1/tasks").json()["results"]] for t in (a, b)}
    assert listed == {a: [], b: [str(task.pk)]}

    License.objects.filter(pk=b.license.pk).update(status=License.Status.SUSPENDED)  # B cannot fall back on A's
    refused = b.key(["tasks:write"]).post("/api/v1/tasks", body, format="json")
    assert refused.status_code == 402 and _usage(a.license) == 0


@covers("/v1/messages")
def test_a_message_is_metered_on_the_callers_license_and_recorded_in_its_organization(a, b, gateway):
    body = {"model": "gpt-4o-mini", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}
    response = b.key(["tasks:write"]).post("/v1/messages", body, format="json")
    assert response.status_code == 200, response.content
    task = ProcessedTask.objects.get()
    assert (task.organization_id, task.license_id, task.user_id) == (b.org.pk, b.license.pk, b.owner.pk)
    assert response.json()["id"] == f"msg_{task.pk.hex}"
    assert (_usage(b.license), _usage(a.license)) == (1, 0)
    assert a.key(["tasks:read"]).get(f"/api/v1/tasks/{task.pk}").status_code == 404
    License.objects.filter(pk=b.license.pk).update(status=License.Status.SUSPENDED)  # B cannot fall back on A's
    refused = b.key(["tasks:write"]).post("/v1/messages", body, format="json")
    assert refused.status_code == 402 and refused.json()["error"]["type"] == "billing_error"
    assert _usage(a.license) == 0


@covers("/v1/embeddings")
def test_embeddings_are_metered_on_the_callers_license_and_recorded_in_its_organization(a, b, gateway):
    ai_model("text-embedding-3-small", capabilities=["embeddings"], is_default=False)
    body = {"model": "text-embedding-3-small", "input": ["hi", "there"]}
    response = b.key(["tasks:write"]).post("/v1/embeddings", body, format="json")
    assert response.status_code == 200, response.content
    assert len(response.json()["data"]) == 2
    task = ProcessedTask.objects.get()
    assert (task.organization_id, task.license_id, task.user_id) == (b.org.pk, b.license.pk, b.owner.pk)
    assert (_usage(b.license), _usage(a.license)) == (1, 0)
    assert a.key(["tasks:read"]).get(f"/api/v1/tasks/{task.pk}").status_code == 404
    License.objects.filter(pk=b.license.pk).update(status=License.Status.SUSPENDED)  # B cannot fall back on A's
    assert b.key(["tasks:write"]).post("/v1/embeddings", body, format="json").status_code == 402
    assert _usage(a.license) == 0


@covers("/v1/responses")
def test_a_response_is_metered_on_the_callers_license_and_recorded_in_its_organization(a, b, gateway):
    body = {"model": "gpt-4o-mini", "input": "hi"}
    response = b.key(["tasks:write"]).post("/v1/responses", body, format="json")
    assert response.status_code == 200, response.content
    task = ProcessedTask.objects.get()
    assert (task.organization_id, task.license_id, task.user_id) == (b.org.pk, b.license.pk, b.owner.pk)
    assert response.json()["id"] == f"resp_{task.pk.hex}"
    assert (_usage(b.license), _usage(a.license)) == (1, 0)
    assert a.key(["tasks:read"]).get(f"/api/v1/tasks/{task.pk}").status_code == 404
    License.objects.filter(pk=b.license.pk).update(status=License.Status.SUSPENDED)  # B cannot fall back on A's
    assert b.key(["tasks:write"]).post("/v1/responses", body, format="json").status_code == 402
    assert _usage(a.license) == 0


@covers("/v1/models")
def test_models_are_one_global_catalogue_of_active_models(a, b, gateway):
    seen = [tenant.key(["tasks:read"]).get("/v1/models") for tenant in (a, b)]
    assert seen[0].status_code == seen[1].status_code == 200
    assert seen[0].json() == seen[1].json()
    assert [model["id"] for model in seen[1].json()["data"]] == ["gpt-4o-mini"]


@covers("/v1/chat/completions")
def test_expired_license_of_the_caller_is_not_replaced_by_another(a, b, gateway):
    """An expired license of B (the beat has not marked it yet) does not fall back to any other."""
    License.objects.filter(pk=b.license.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    assert _completion(b.key(["tasks:write"])).status_code == 402
    assert _usage(a.license) == 0
