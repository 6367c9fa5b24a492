"""The Django admin of the ten CELAEST apps.

Every registered model's pages render for a superuser over the demo data; secrets never reach a
page; append-only tables refuse writes; soft-deleted models soft-delete; the staff actions do what
they say; a changelist costs the same number of queries for 5 rows as for 50; big tables are not
counted row by row.
"""

import base64
import secrets
import uuid
from datetime import timedelta
from decimal import Decimal
from io import StringIO

import factory
import pytest
from django.apps import apps
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.core.management import call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from aimesh.models import AIApiKey
from analytics.models import TelemetryEvent
from audit.models import AuditLog
from billing.models import Invoice, InvoiceLine, Order
from celaest import crypto
from celaest.admin import MASKED, EstimatedCountPaginator
from identity.models import Organization, User
from ipcontrol.models import LicenseCollision
from licensing.models import License
from marketplace.services import product_review_create
from operations.models import ProcessedTask
from settings_app.models import SystemConfig, Webhook
from tests import factories

CELAEST_APPS = settings.CELAEST_APPS

REGISTERED = sorted(
    (model for model in admin.site._registry if model._meta.app_label in CELAEST_APPS),
    key=lambda model: model._meta.label,
)
SEARCHABLE = [model for model in REGISTERED if admin.site._registry[model].search_fields]


def model_ids(model):
    return model._meta.label


def admin_url(model_or_obj, view, *args):
    opts = model_or_obj._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", args=args)


@pytest.fixture(scope="module")
def demo_data(django_db_setup, django_db_blocker, tmp_path_factory):
    """Rows in every table (``manage.py seed_demo``), made once for this module and rolled back after it.

    Tests using it run inside this transaction (each in its own savepoint, from ``db``); the
    database stays blocked in between, so a test that forgets ``db`` still fails loudly.
    Tests that run after the first one using it see the demo rows too: their own rows use values
    the demo does not (192.0.2.x addresses, "Zebulon" names, "ADMIN-TEST" numbers).
    """
    credentials = tmp_path_factory.mktemp("seed_demo") / "credentials"
    module_transaction = transaction.atomic()
    with django_db_blocker.unblock():
        module_transaction.__enter__()
        call_command("seed_demo", credentials_file=credentials, stdout=StringIO())
    yield
    with django_db_blocker.unblock():
        transaction.set_rollback(True)
        module_transaction.__exit__(None, None, None)


@pytest.fixture
def superuser(db):
    return User.objects.create_superuser(email="root@admin-tests.invalid", password="not-used-here-1")


@pytest.fixture
def staff_client(client, superuser):
    client.force_login(superuser)
    return client


# --- every model ----------------------------------------------------------------------------------


def test_every_model_of_the_ten_apps_is_registered():
    models = {model for app in CELAEST_APPS for model in apps.get_app_config(app).get_models()}
    assert models - set(REGISTERED) == set()
    assert len(models) >= 36  # the ERD's 36 tables, and supporting ones (document sequences)


def test_site_is_branded(staff_client):
    response = staff_client.get(reverse("admin:index"))
    assert response.status_code == 200
    assert "<title>" in response.text and "CELAEST back office" in response.text
    assert "backoffice/favicon" in response.text
    assert "View site" not in response.text  # no public site: the account menu links the API docs
    assert "/api/docs/" in response.text


@pytest.mark.parametrize("model", REGISTERED, ids=model_ids)
def test_changelist_renders(demo_data, staff_client, model):
    assert model._base_manager.exists(), f"seed_demo made no {model._meta.label}"
    response = staff_client.get(admin_url(model, "changelist"))
    assert response.status_code == 200
    assert response.context["cl"].result_count >= 1


@pytest.mark.parametrize("model", REGISTERED, ids=model_ids)
def test_every_list_filter_choice_renders(demo_data, staff_client, model):
    changelist = admin_url(model, "changelist")
    response = staff_client.get(changelist)
    cl = response.context["cl"]
    query_strings = {choice["query_string"] for spec in cl.filter_specs for choice in spec.choices(cl)}
    for query_string in query_strings:
        assert staff_client.get(changelist + query_string).status_code == 200, query_string


@pytest.mark.parametrize("model", SEARCHABLE, ids=model_ids)
@pytest.mark.parametrize(
    "term", ["demo", str(uuid.uuid4()), "198.51.100.10", "x'%_"], ids=["word", "uuid", "ip", "odd"]
)
def test_changelist_search(demo_data, staff_client, model, term):
    response = staff_client.get(admin_url(model, "changelist"), {"q": term})
    assert response.status_code == 200


@pytest.mark.parametrize("model", REGISTERED, ids=model_ids)
def test_add_page_renders_or_is_refused(demo_data, staff_client, rf, superuser, model):
    model_admin = admin.site._registry[model]
    request = rf.get("/")
    request.user = superuser
    response = staff_client.get(admin_url(model, "add"))
    assert response.status_code == (200 if model_admin.has_add_permission(request) else 403)


@pytest.mark.parametrize("model", REGISTERED, ids=model_ids)
def test_change_page_renders(demo_data, staff_client, model):
    obj = model._base_manager.order_by("pk").first()
    assert obj is not None, f"seed_demo made no {model._meta.label}"
    response = staff_client.get(admin_url(model, "change", obj.pk))
    assert response.status_code == 200


def test_search_by_id_finds_the_row(staff_client):
    task = factories.ProcessedTaskFactory()
    factories.ProcessedTaskFactory()
    response = staff_client.get(admin_url(ProcessedTask, "changelist"), {"q": str(task.pk)})
    assert [row.pk for row in response.context["cl"].result_list] == [task.pk]


def test_search_by_ip_address_finds_the_rows(staff_client):
    hit = factories.LicenseValidationFactory(ip_address="192.0.2.201")
    factories.LicenseValidationFactory(ip_address="192.0.2.202")
    response = staff_client.get(reverse("admin:ipcontrol_licensevalidation_changelist"), {"q": "192.0.2.201"})
    assert [row.pk for row in response.context["cl"].result_list] == [hit.pk]


# --- secrets --------------------------------------------------------------------------------------


def test_ai_api_key_is_write_only(staff_client):
    clear_key = "sk-live-" + uuid.uuid4().hex + "WXYZ"
    response = staff_client.post(
        admin_url(AIApiKey, "add"),
        {"provider": "openai", "key_name": "primary", "secret": clear_key, "priority": 10, "rate_limit_rpm": 60},
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    key = AIApiKey.objects.get(key_name="primary")
    assert crypto.decrypt(key.key_encrypted) == clear_key
    assert key.key_hint == "WXYZ"

    for page in (admin_url(AIApiKey, "change", key.pk), admin_url(AIApiKey, "changelist")):
        html = staff_client.get(page).text
        assert clear_key not in html
        assert key.key_encrypted not in html
        assert "…WXYZ" in html

    # Saving without typing a key keeps the stored one.
    response = staff_client.post(
        admin_url(AIApiKey, "change", key.pk),
        {"provider": "openai", "key_name": "renamed", "secret": "", "priority": 5, "rate_limit_rpm": 60},
    )
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.key_name == "renamed"
    assert crypto.decrypt(key.key_encrypted) == clear_key


def test_ai_api_key_needs_a_key_when_added(staff_client):
    response = staff_client.post(
        admin_url(AIApiKey, "add"), {"provider": "openai", "key_name": "empty", "priority": 1, "rate_limit_rpm": 60}
    )
    assert response.status_code == 200
    assert "secret" in response.context["adminform"].form.errors
    assert not AIApiKey.objects.filter(key_name="empty").exists()


def test_webhook_secret_is_write_only(staff_client):
    owner = factories.UserFactory()
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    response = staff_client.post(
        admin_url(Webhook, "add"),
        {
            "organization": owner.organization_id,
            "user": owner.pk,
            "name": "Orders",
            "url": "https://hooks.example.com/orders",
            "events": '["order.paid"]',
            "status": "active",
            "secret": secret,
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    webhook = Webhook.objects.get(name="Orders")
    assert crypto.decrypt(webhook.secret_encrypted) == secret
    assert webhook.secret_hash == crypto.hash_secret(secret)

    for page in (admin_url(Webhook, "change", webhook.pk), admin_url(Webhook, "changelist")):
        html = staff_client.get(page).text
        assert secret not in html
        assert webhook.secret_encrypted not in html
        assert webhook.secret_hash not in html
        assert webhook.secret_hash[:12] in html


def test_webhook_secret_must_be_a_standard_webhooks_secret(staff_client):
    owner = factories.UserFactory()
    response = staff_client.post(
        admin_url(Webhook, "add"),
        {
            "organization": owner.organization_id,
            "user": owner.pk,
            "name": "Weak",
            "url": "https://hooks.example.com/weak",
            "events": '["order.paid"]',
            "status": "active",
            "secret": "whsec_c2hvcnQ=",  # 5 bytes
        },
    )
    assert response.status_code == 200
    assert "secret" in response.context["adminform"].form.errors
    assert "whsec_c2hvcnQ=" not in response.text
    assert not Webhook.objects.filter(name="Weak").exists()


def test_seeded_secrets_never_reach_a_page(demo_data, staff_client):
    """Whatever the demo data holds: provider keys, webhook secrets, key hashes, session tokens."""
    checked = 0
    for key in AIApiKey.objects.all():
        html = staff_client.get(admin_url(key, "change", key.pk)).text
        assert key.key_encrypted not in html
        assert crypto.decrypt(key.key_encrypted) not in html
        checked += 1
    for webhook in Webhook.objects.all():
        html = staff_client.get(admin_url(webhook, "change", webhook.pk)).text
        assert webhook.secret_encrypted not in html
        assert crypto.decrypt(webhook.secret_encrypted) not in html
        if webhook.previous_secret_encrypted:
            assert webhook.previous_secret_encrypted not in html
        checked += 1
    user_api_key_model = apps.get_model("settings_app", "UserApiKey")
    for api_key in user_api_key_model.objects.all():
        html = staff_client.get(admin_url(api_key, "change", api_key.pk)).text
        assert api_key.key_hash not in html
        checked += 1
    session_model = apps.get_model("settings_app", "UserSession")
    for session in session_model.objects.all():
        html = staff_client.get(admin_url(session, "change", session.pk)).text
        assert session.session_token not in html
        checked += 1
    assert checked >= 4


def test_user_api_key_and_session_pages_hide_hashes(staff_client):
    api_key = factories.UserApiKeyFactory()
    session = factories.UserSessionFactory()
    for obj, secret in ((api_key, api_key.key_hash), (session, session.session_token)):
        for page in (admin_url(obj, "change", obj.pk), admin_url(obj, "changelist")):
            response = staff_client.get(page)
            assert response.status_code == 200
            assert secret not in response.text


def test_user_password_hash_is_not_shown(staff_client):
    user = factories.UserFactory()
    html = staff_client.get(admin_url(user, "change", user.pk)).text
    assert user.password not in html
    assert user.password.split("$")[-1] not in html


def test_sensitive_config_is_masked_and_blank_keeps_it(staff_client):
    entry = SystemConfig.objects.create(key="smtp.password", value="hunter2-secret-value", is_sensitive=True)
    plain = SystemConfig.objects.create(key="ui.page_size", value=25)

    listing = staff_client.get(admin_url(SystemConfig, "changelist")).text
    assert "hunter2-secret-value" not in listing
    assert MASKED in listing
    assert "25" in listing

    change_url = admin_url(SystemConfig, "change", entry.pk)
    assert "hunter2-secret-value" not in staff_client.get(change_url).text

    response = staff_client.post(change_url, {"new_value": "", "is_sensitive": "on", "description": "SMTP"})
    assert response.status_code == 302
    entry.refresh_from_db()
    assert entry.value == "hunter2-secret-value"
    assert entry.description == "SMTP"

    response = staff_client.post(change_url, {"new_value": "rotated-value", "is_sensitive": "on"})
    assert response.status_code == 302
    entry.refresh_from_db()
    assert entry.value == "rotated-value"

    # Un-marking needs a new value, or the old secret would be on the next page.
    response = staff_client.post(change_url, {"new_value": ""})
    assert response.status_code == 200
    entry.refresh_from_db()
    assert entry.is_sensitive

    response = staff_client.post(admin_url(SystemConfig, "change", plain.pk), {"value": "50"})
    assert response.status_code == 302
    plain.refresh_from_db()
    assert plain.value == 50


def test_json_with_a_nul_character_is_a_form_error_not_a_500(staff_client):
    response = staff_client.post(
        admin_url(Organization, "add"),
        {"name": "Nul", "slug": "zebulon-nul", "max_users": 5, "settings": '{"note": "a\\u0000b"}'},
    )
    assert response.status_code == 200
    assert "settings" in response.context["adminform"].form.errors


# --- append-only tables ---------------------------------------------------------------------------


@pytest.mark.parametrize("factory", [factories.AuditLogFactory, factories.SystemEventFactory], ids=["audit", "event"])
def test_append_only_tables_refuse_every_write(staff_client, factory):
    row = factory()
    change_url = admin_url(row, "change", row.pk)
    response = staff_client.get(change_url)
    assert response.status_code == 200
    assert 'name="_save"' not in response.text
    assert staff_client.post(change_url, {"action": "delete"}).status_code == 403
    assert staff_client.get(admin_url(row, "add")).status_code == 403
    assert staff_client.post(admin_url(row, "delete", row.pk), {"post": "yes"}).status_code == 403
    assert type(row).objects.filter(pk=row.pk).exists()


def test_audit_log_changelist_offers_no_actions(staff_client):
    factories.AuditLogFactory()
    response = staff_client.get(admin_url(AuditLog, "changelist"))
    assert response.context["action_form"] is None


# --- soft delete ----------------------------------------------------------------------------------


def _action(client, model, action, objs):
    return client.post(
        admin_url(model, "changelist"),
        {"action": action, admin.helpers.ACTION_CHECKBOX_NAME: [str(obj.pk) for obj in objs]},
    )


def test_soft_delete_and_restore_actions(staff_client):
    alive, doomed = factories.LicenseFactory(), factories.LicenseFactory()
    action_field = staff_client.get(admin_url(License, "changelist")).context["action_form"].fields["action"]
    offered = {name for name, _ in action_field.choices}
    assert {"soft_delete_selected", "restore_selected"} <= offered
    assert "delete_selected" not in offered

    _action(staff_client, License, "soft_delete_selected", [doomed])
    doomed = License.all_objects.get(pk=doomed.pk)
    assert doomed.deleted_at is not None
    assert License.objects.filter(pk=alive.pk).exists()

    listing = staff_client.get(admin_url(License, "changelist"), {"deleted": "deleted"})
    assert [row.pk for row in listing.context["cl"].result_list] == [doomed.pk]
    listing = staff_client.get(admin_url(License, "changelist"))
    assert {alive.pk, doomed.pk} <= {row.pk for row in listing.context["cl"].result_list}
    assert staff_client.get(admin_url(License, "change", doomed.pk)).status_code == 200

    _action(staff_client, License, "restore_selected", [doomed])
    assert License.objects.filter(pk=doomed.pk).exists()


def test_delete_button_soft_deletes(staff_client):
    organization = factories.OrganizationFactory()
    factories.UserFactory(organization=organization)  # a PROTECT relation would block a hard delete
    delete_url = admin_url(organization, "delete", organization.pk)
    assert "Mark the" in staff_client.get(delete_url).text
    response = staff_client.post(delete_url, {"post": "yes"})
    assert response.status_code == 302
    organization = Organization.all_objects.get(pk=organization.pk)
    assert organization.deleted_at is not None
    assert LogEntry.objects.filter(object_id=str(organization.pk), change_message="Soft deleted.").exists()


def test_soft_deleting_a_user_deactivates_it(staff_client):
    user = factories.UserFactory()
    _action(staff_client, User, "soft_delete_selected", [user])
    user = User.all_objects.get(pk=user.pk)
    assert user.deleted_at is not None
    assert not user.is_active


def test_a_deleted_rows_unique_value_is_a_form_error_not_a_500(staff_client):
    gone = factories.OrganizationFactory(slug="taken-slug")
    gone.soft_delete()
    response = staff_client.post(admin_url(Organization, "add"), {"name": "New", "slug": "taken-slug", "max_users": 5})
    assert response.status_code == 200
    assert "slug" in response.context["adminform"].form.errors


def test_autocomplete_offers_live_rows_only(staff_client):
    live = factories.OrganizationFactory(name="Zebulon live")
    gone = factories.OrganizationFactory(name="Zebulon gone")
    gone.soft_delete()
    response = staff_client.get(
        reverse("admin:autocomplete"),
        {"app_label": "licensing", "model_name": "license", "field_name": "organization", "term": "Zebulon"},
    )
    assert response.status_code == 200
    assert [row["id"] for row in response.json()["results"]] == [str(live.pk)]


def test_user_is_added_with_email_and_password_twice(staff_client):
    response = staff_client.post(
        admin_url(User, "add"),
        {
            "email": "New.Person@Example.com",
            "usable_password": "true",
            "password1": "a-long-enough-passphrase",
            "password2": "a-long-enough-passphrase",
            "role": "member",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    user = User.objects.get(email="new.person@example.com")
    assert user.check_password("a-long-enough-passphrase")


# --- staff actions --------------------------------------------------------------------------------


def test_license_suspend_reinstate_revoke(staff_client):
    license_ = factories.LicenseFactory(status=License.Status.ACTIVE)
    revoked = factories.LicenseFactory(status=License.Status.REVOKED, revoked_at=timezone.now())

    _action(staff_client, License, "suspend_licenses", [license_, revoked])
    license_.refresh_from_db()
    assert license_.status == License.Status.SUSPENDED
    assert license_.suspended_at is not None

    _action(staff_client, License, "reinstate_licenses", [license_, revoked])
    license_.refresh_from_db()
    revoked.refresh_from_db()
    assert license_.status == License.Status.ACTIVE
    assert license_.suspended_at is None
    assert revoked.status == License.Status.REVOKED

    _action(staff_client, License, "revoke_licenses", [license_])
    license_.refresh_from_db()
    assert license_.status == License.Status.REVOKED
    assert license_.revoked_at is not None


def test_session_and_api_key_revoke_actions(staff_client):
    session = factories.UserSessionFactory()
    api_key = factories.UserApiKeyFactory()
    _action(staff_client, type(session), "revoke_sessions", [session])
    _action(staff_client, type(api_key), "revoke_keys", [api_key])
    session.refresh_from_db()
    api_key.refresh_from_db()
    assert (session.is_active, session.revoked_at is not None) == (False, True)
    assert api_key.revoked_at is not None


def test_deleting_a_review_recomputes_the_product_rating(staff_client):
    product = factories.ProductFactory()
    kept = product_review_create(user=factories.UserFactory(), product=product, rating=4)
    dropped = product_review_create(user=factories.UserFactory(), product=product, rating=1)
    response = _action(staff_client, type(dropped), "delete_selected", [dropped])
    assert response.status_code == 200  # the confirmation page
    response = staff_client.post(
        admin_url(dropped, "changelist"),
        {"action": "delete_selected", "post": "yes", admin.helpers.ACTION_CHECKBOX_NAME: [str(dropped.pk)]},
    )
    assert response.status_code == 302
    product.refresh_from_db()
    assert (product.review_count, product.avg_rating) == (1, kept.rating)


def test_api_key_health_actions(staff_client):
    key = factories.AIApiKeyFactory(is_healthy=False, consecutive_failures=4, cooldown_until=timezone.now())
    _action(staff_client, AIApiKey, "mark_healthy", [key])
    key.refresh_from_db()
    assert (key.is_healthy, key.consecutive_failures, key.cooldown_until) == (True, 0, None)
    _action(staff_client, AIApiKey, "mark_unhealthy", [key])
    key.refresh_from_db()
    assert not key.is_healthy


def test_webhook_disable_and_enable(staff_client):
    webhook = factories.WebhookFactory()
    _action(staff_client, Webhook, "disable_webhooks", [webhook])
    webhook.refresh_from_db()
    assert webhook.status == Webhook.Status.DISABLED
    _action(staff_client, Webhook, "enable_webhooks", [webhook])
    webhook.refresh_from_db()
    assert webhook.status == Webhook.Status.ACTIVE


def test_collision_mark_resolved(staff_client, superuser):
    collision = factories.LicenseCollisionFactory()
    _action(staff_client, LicenseCollision, "mark_resolved", [collision])
    collision.refresh_from_db()
    assert collision.resolved_at is not None
    assert collision.resolved_by == superuser
    assert not collision.auto_resolved


# --- cost of a page -------------------------------------------------------------------------------


def _changelist_queries(client, model, organization):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(admin_url(model, "changelist"), {"organization__id__exact": str(organization.pk)})
    assert response.status_code == 200
    return len(queries), len(response.context["cl"].result_list)


@pytest.mark.parametrize(
    ("model", "model_factory", "overrides"),
    [
        (License, factories.LicenseFactory, {}),
        (ProcessedTask, factories.ProcessedTaskFactory, {}),
        (LicenseCollision, factories.LicenseCollisionFactory, {}),
        (Order, factories.OrderFactory, {"order_number": factory.Sequence(lambda n: f"ADMIN-TEST-{n:06d}")}),
    ],
    ids=["license", "processed_task", "collision", "order"],
)
def test_changelist_queries_do_not_grow_with_rows(staff_client, model, model_factory, overrides):
    organization = factories.OrganizationFactory()
    # A collision takes its organization from its license.
    owner = {"license__organization": organization} if model is LicenseCollision else {"organization": organization}
    model_factory.create_batch(5, **owner, **overrides)
    few_queries, few_rows = _changelist_queries(staff_client, model, organization)
    model_factory.create_batch(45, **owner, **overrides)
    many_queries, many_rows = _changelist_queries(staff_client, model, organization)
    assert (few_rows, many_rows) == (5, 50)
    assert many_queries == few_queries


# --- big tables -----------------------------------------------------------------------------------


class SmallLimitPaginator(EstimatedCountPaginator):
    count_limit = 3


def test_paginator_stops_counting_at_its_limit(db):
    factories.TelemetryEventFactory.create_batch(5, event_type="limit-test")
    paginator = SmallLimitPaginator(TelemetryEvent.objects.filter(event_type="limit-test"), 2)
    assert (paginator.count, paginator.count_kind) == (3, "at_least")
    paginator = SmallLimitPaginator(TelemetryEvent.objects.filter(event_type="none"), 2)
    assert (paginator.count, paginator.count_kind) == (0, "exact")


def test_paginator_uses_the_planner_estimate_for_a_whole_big_table(db):
    factories.TelemetryEventFactory.create_batch(7)
    rows = TelemetryEvent.objects.count()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE telemetry_events")  # on a table this small the estimate is exact
    paginator = SmallLimitPaginator(TelemetryEvent.objects.all(), 2)
    with CaptureQueriesContext(connection) as queries:
        count = paginator.count
    assert (count, paginator.count_kind) == (rows, "estimate")
    assert not any("COUNT(" in query["sql"].upper() for query in queries)


@pytest.mark.parametrize(
    "model",
    [model for model in REGISTERED if admin.site._registry[model].show_full_result_count is False],
    ids=model_ids,
)
def test_big_tables_do_not_count_all_rows(model):
    model_admin = admin.site._registry[model]
    assert issubclass(model_admin.paginator, EstimatedCountPaginator)


def test_the_big_tables_are_the_expected_ones():
    big = {model._meta.db_table for model in REGISTERED if admin.site._registry[model].show_full_result_count is False}
    assert big >= {
        "processed_tasks",
        "license_validations",
        "audit_logs",
        "telemetry_events",
        "webhook_deliveries",
        "system_events",
        "asset_downloads",
        "license_usage_log",
    }


# --- issued documents, the license page, the organization page --------------------------------------


def test_an_issued_invoice_shows_its_lines_taxes_coupon_and_payment_and_cannot_change(staff_client):
    coupon = factories.CouponFactory(code="ZEBULON10")
    tax_rate = factories.TaxRateFactory()
    item = factories.OrderItemFactory(
        description="Zebulon seat", order__order_number="ADMIN-TEST-INV",
        order__coupon=coupon, order__tax_rate=tax_rate, order__tax_rate_percent=21,
        order__discount_total=Decimal("9.90"), order__gateway_reference="pi_zebulon_ref",
        order__status=Order.Status.PAID, order__paid_at=timezone.now(),
    )  # fmt: skip
    invoice = factories.InvoiceFactory(
        invoice_number="ADMIN-TEST-INV-1",
        order=item.order,
        tax_total=Decimal("18.71"),
        total=Decimal("107.81"),
        billing_details={"vat": "ES-Z1"},
    )
    change_url = admin_url(invoice, "change", invoice.pk)
    page = staff_client.get(change_url)
    assert page.status_code == 200
    html = page.text
    assert "Zebulon seat" in html and "99.00 USD" in html  # its line, money with currency, 2 decimals
    assert "ZEBULON10" in html and "9.90 USD" in html  # the coupon and its discount
    assert "18.71 USD" in html and "21%" in html  # the taxes and their rate
    assert "pi_zebulon_ref" in html and "107.81 USD" in html  # the payment and the total
    # read only: no form field, no save, no delete
    assert 'name="billing_details"' not in html and "ES-Z1" in html
    assert 'name="_save"' not in html
    assert admin_url(invoice, "delete", invoice.pk) not in html
    assert staff_client.get(admin_url(invoice, "delete", invoice.pk)).status_code == 403
    assert staff_client.post(change_url, {"billing_details": "{}"}).status_code == 403
    action_field = staff_client.get(admin_url(Invoice, "changelist")).context["action_form"].fields["action"]
    assert "delete_selected" not in {name for name, _ in action_field.choices}
    invoice.refresh_from_db()
    assert invoice.billing_details == {"vat": "ES-Z1"}


def test_orders_are_cancelled_or_refunded_never_deleted(staff_client):
    order = factories.OrderFactory(order_number="ADMIN-TEST-CANCEL")
    html = staff_client.get(admin_url(order, "change", order.pk)).text
    assert admin_url(order, "delete", order.pk) not in html
    assert staff_client.post(admin_url(order, "delete", order.pk), {"post": "yes"}).status_code == 403
    offered = {
        name
        for name, _ in staff_client.get(admin_url(Order, "changelist")).context["action_form"].fields["action"].choices
    }
    assert "delete_selected" not in offered and {"refund", "cancel"} <= offered
    _action(staff_client, Order, "cancel", [order])
    order.refresh_from_db()
    assert order.status == Order.Status.CANCELLED


def test_license_page_shows_limits_usage_validations_and_collisions(staff_client):
    license_ = factories.LicenseFactory(status=License.Status.ACTIVE, custom_limits={"ai_requests_per_month": 200})
    today = timezone.now().date()
    factories.LicenseUsageLogFactory(
        license=license_, organization=license_.organization, ai_requests_count=170,
        period_start=today.replace(day=1), period_end=today + timedelta(days=1),
    )  # fmt: skip
    factories.LicenseValidationFactory(license=license_, is_valid=False, result_code="TOO_MANY_MACHINES")
    factories.LicenseCollisionFactory(license=license_, organization=license_.organization, severity="high")
    html = staff_client.get(admin_url(license_, "change", license_.pk)).text
    assert "170 / 200 (85%)" in html and 'data-level="warning"' in html  # usage against the custom limit
    assert "TOO_MANY_MACHINES" in html  # recent validations
    assert 'data-tone="danger"' in html  # a high-severity collision, red
    for verb in ("suspend", "renew", "revoke"):
        assert f"/{license_.pk}/{verb}/" in html
    assert f"/{license_.pk}/reinstate/" not in html  # only what applies to an active license


def test_license_buttons_ask_why_and_go_through_the_service(staff_client):
    license_ = factories.LicenseFactory(status=License.Status.ACTIVE)
    suspend_url = reverse("admin:licensing_license_suspend_one", args=[license_.pk])
    form = staff_client.get(suspend_url)
    assert form.status_code == 200 and 'name="reason"' in form.text
    assert staff_client.post(suspend_url, {"reason": ""}).status_code == 200  # a reason is required
    license_.refresh_from_db()
    assert license_.status == License.Status.ACTIVE

    response = staff_client.post(suspend_url, {"reason": "Zebulon chargeback"})
    assert response.status_code == 302 and response["Location"] == admin_url(license_, "change", license_.pk)
    license_.refresh_from_db()
    assert (license_.status, license_.status_reason) == (License.Status.SUSPENDED, "Zebulon chargeback")
    assert AuditLog.objects.filter(resource_id=str(license_.pk), source="admin").exists()

    expires = license_.expires_at
    staff_client.post(reverse("admin:licensing_license_renew_one", args=[license_.pk]), {"days": 30, "reason": "r"})
    license_.refresh_from_db()
    assert license_.expires_at > (expires or timezone.now())

    # refused by the service: reported, nothing changes
    staff_client.post(reverse("admin:licensing_license_revoke_one", args=[license_.pk]), {"reason": "fraud"})
    response = staff_client.post(
        reverse("admin:licensing_license_revoke_one", args=[license_.pk]), {"reason": "again"}, follow=True
    )
    assert response.status_code == 200
    license_.refresh_from_db()
    assert license_.status == License.Status.REVOKED and license_.status_reason == "fraud"


def test_organization_page_tells_the_whole_story(staff_client):
    organization = factories.OrganizationFactory(name="Zebulon Works")
    owner = factories.UserFactory(organization=organization, email="owner@zebulon.invalid")
    license_ = factories.LicenseFactory(organization=organization, status=License.Status.ACTIVE)
    factories.LicenseIpBindingFactory(license=license_, organization=organization, hostname="zebulon-host")
    factories.LicenseCollisionFactory(license=license_, organization=organization)
    factories.ProcessedTaskFactory(organization=organization, user=owner, license=license_)
    factories.OrderFactory(organization=organization, user=owner, order_number="ADMIN-TEST-1", status="pending")
    factories.WebhookFactory(organization=organization, user=owner, name="Zebulon hook")
    factories.UserApiKeyFactory(user=owner, name="Zebulon CI")
    factories.AuditLogFactory(organization=organization, user=owner, resource_repr="Zebulon change")
    html = staff_client.get(admin_url(organization, "change", organization.pk)).text
    for fact in (
        "AI spend this period",
        "owner@zebulon.invalid", license_.license_key, "zebulon-host", "Collisions", "AI use since",
        "celaest-panel-charts", "ADMIN-TEST-1", "99.00 USD", "Zebulon hook", "Zebulon CI", "Zebulon change",
    ):  # fmt: skip
        assert fact in html, fact
    # one click from the organization's objects: their lists link it, and so do their pages
    organization_url = admin_url(organization, "change", organization.pk)
    assert organization_url in staff_client.get(admin_url(License, "changelist")).text
    webhook = Webhook.objects.get(organization=organization)
    assert organization_url in staff_client.get(admin_url(webhook, "change", webhook.pk)).text


def test_only_admin_pages_relax_the_content_policy_for_the_theme(staff_client, client):
    admin_policy = staff_client.get(reverse("admin:index"))["Content-Security-Policy"]
    scripts = admin_policy.split("script-src")[1].split(";")[0]
    assert "'unsafe-eval'" in scripts and "'unsafe-inline'" not in scripts
    assert "'unsafe-eval'" in client.get(reverse("admin:login"))["Content-Security-Policy"]
    assert "'unsafe-eval'" not in client.get("/api/docs/")["Content-Security-Policy"]


def test_a_subscription_invoice_shows_its_own_lines(staff_client):
    invoice = factories.InvoiceFactory(invoice_number="ADMIN-TEST-INV-2", order__order_number="ADMIN-TEST-SUB")
    InvoiceLine.objects.create(
        invoice=invoice, kind=InvoiceLine.Kind.OVERAGE, description="Zebulon overage", amount=Decimal("12.5")
    )
    html = staff_client.get(admin_url(invoice, "change", invoice.pk)).text
    assert "Zebulon overage" in html and "12.50 USD" in html and "Usage beyond the plan" in html


def test_order_page_cancels_with_a_reason(staff_client):
    order = factories.OrderFactory(order_number="ADMIN-TEST-BUTTON")
    html = staff_client.get(admin_url(order, "change", order.pk)).text
    cancel_url = reverse("admin:billing_order_cancel_one", args=[order.pk])
    assert cancel_url in html and reverse("admin:billing_order_refund_one", args=[order.pk]) not in html
    response = staff_client.post(cancel_url, {"reason": "Zebulon asked"})
    assert response.status_code == 302
    order.refresh_from_db()
    assert order.status == Order.Status.CANCELLED


def test_custom_limits_are_one_field_per_limit(staff_client):
    license_ = factories.LicenseFactory(custom_limits={"max_machines": 3, "tokens_per_month": None, "beta": True})
    url = admin_url(license_, "change", license_.pk)
    page = staff_client.get(url)
    form = page.context["adminform"].form
    assert 'name="custom_limits"' not in page.text
    management = {
        f"{inline.formset.prefix}-{name}": value
        for inline in page.context["inline_admin_formsets"]
        for name, value in inline.formset.management_form.initial.items()
    }
    assert form.initial["limit_max_machines"] == 3 and form.initial["limit_tokens_per_month"] == "unlimited"
    data = {
        "organization": license_.organization_id, "plan": license_.plan_id, "notes": "",
        "limit_max_machines": "", "limit_ai_requests_per_month": "500", "limit_tokens_per_month": "unlimited",
        "limit_max_users": "", "limit_max_batch_size": "", **management,
    }  # fmt: skip
    assert staff_client.post(url, {**data, "limit_max_users": "many"}).status_code == 200  # a form error
    response = staff_client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    license_.refresh_from_db()
    assert license_.custom_limits == {"ai_requests_per_month": 500, "tokens_per_month": None, "beta": True}


def test_read_only_money_shows_two_decimals(staff_client):
    order = factories.OrderFactory(order_number="ADMIN-TEST-MONEY", total=Decimal("177.3"))
    html = staff_client.get(admin_url(order, "change", order.pk)).text
    assert "177.30" in html and "177.3000" not in html


def test_ai_spend_is_shown_against_what_the_subscriptions_include(staff_client):
    organization = factories.OrganizationFactory()
    terms = factories.PlanBillingTermsFactory(included_ai_spend=Decimal("10"))
    subscription = factories.SubscriptionFactory(organization=organization, plan=terms.plan, status="active")
    today = timezone.now().date()
    factories.LicenseUsageLogFactory(
        license=subscription.license, organization=organization, calculated_cost=Decimal("9.5"),
        period_start=today.replace(day=1), period_end=today + timedelta(days=1),
    )  # fmt: skip
    html = staff_client.get(admin_url(organization, "change", organization.pk)).text
    assert "9.50 USD / 10.00 USD (95%)" in html


# --- how lists show values (celaest.admin_display) ------------------------------------------------


def test_values_read_at_a_glance():
    from celaest.admin_display import format_money, humanised_time, short_key, status_badge

    assert format_money(Decimal("177.3000"), "USD") == "177.30 USD"
    assert format_money(Decimal("1234.5"), "EUR") == "1,234.50 EUR"
    assert format_money(Decimal("500"), "JPY") == "500 JPY"  # the currency's own decimals
    assert format_money(Decimal("0.00012"), "USD") == "< 0.01 USD"  # not "0.00" for a real cost
    key = "CEL-3F9A5-AXJMZ-9GS9K-H9YH1-5Q6G9-8GNBM"
    shortened = short_key(key)
    assert "CEL-3F9A…" in shortened and f'data-copy="{key}"' in shortened and f'title="{key}"' in shortened
    moment = timezone.now() - timedelta(days=3, hours=2)
    shown = humanised_time(moment)
    assert "3\xa0days ago" in shown and timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S") in shown
    assert 'data-tone="danger"' in status_badge("revoked") and 'data-tone="success"' in status_badge("paid")
    assert 'data-tone="danger"' in status_badge("high")  # red means serious


def test_lists_show_badges_money_short_keys_and_humanised_times(staff_client):
    license_ = factories.LicenseFactory(status=License.Status.SUSPENDED)
    factories.OrderFactory(order_number="ADMIN-TEST-LIST", total=Decimal("177.3"))
    licenses = staff_client.get(admin_url(License, "changelist")).text
    assert f'data-copy="{license_.license_key}"' in licenses and 'class="cel-copy"' in licenses
    assert 'data-tone="warning"' in licenses  # suspended
    assert '<time class="cel-time"' in licenses
    orders = staff_client.get(admin_url(Order, "changelist")).text
    assert ">177.30 USD<" in orders  # currency, two decimals (the exact amount on hover)
