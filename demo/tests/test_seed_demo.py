"""``manage.py seed_demo``: every table gets rows, a rerun adds none, and the printed logins work."""

import hashlib
import re
import stat
from decimal import ROUND_HALF_UP, Decimal
from io import StringIO
from urllib.parse import urlsplit

import pytest
from django.apps import apps
from django.conf import settings
from django.contrib.staticfiles import finders
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Count, Sum
from django.urls import reverse

from aimesh.models import AIApiKey, AIModel, Prompt
from billing.models import Invoice, Order
from celaest.crypto import decrypt, hash_secret
from demo.loaders.base import ADMIN_EMAIL, OWNER_EMAIL
from demo.management.commands.seed_demo import Command
from identity.models import Organization, User
from ipcontrol.models import LicenseValidation
from licensing.models import License, LicenseUsageLog
from marketplace import services
from marketplace.models import CustomerAsset, ProductRelease
from operations.models import ProcessedTask, TaskBatch
from settings_app.models import UserApiKey, UserSession, Webhook, WebhookDelivery

pytestmark = pytest.mark.django_db

CELAEST_APPS = settings.CELAEST_APPS  # the apps whose models the demo fills
LOGIN_LINE = re.compile(r"^(Staff admin|Demo owner):\s+(\S+) / (\S+)$", re.MULTILINE)
HEX64 = re.compile(r"^[0-9a-f]{64}$")


@pytest.fixture(autouse=True)
def _no_password_env(monkeypatch):
    monkeypatch.delenv("DEMO_ADMIN_PASSWORD", raising=False)
    monkeypatch.delenv("DEMO_OWNER_PASSWORD", raising=False)


@pytest.fixture
def credentials_file(tmp_path):
    return tmp_path / "demo-credentials.json"


def seed(credentials_file, *args: str) -> dict[str, tuple[str, str]]:
    """Run the command; return the printed logins by label."""
    out = StringIO()
    call_command("seed_demo", *args, credentials_file=credentials_file, stdout=out)
    logins = {label: (email, password) for label, email, password in LOGIN_LINE.findall(out.getvalue())}
    assert set(logins) == {"Staff admin", "Demo owner"}, out.getvalue()
    return logins


ERD_TABLES = frozenset(
    """organizations users_profile subscription_plans licenses license_usage_log ai_models ai_api_pool
    prompts_master task_batches processed_tasks roi_metrics telemetry_events audit_logs system_events
    system_config feature_flags product_categories products product_reviews product_releases customer_assets
    asset_downloads payment_gateways payment_methods orders order_items invoices tax_rates coupons user_sessions
    user_api_keys webhooks webhook_deliveries license_ip_bindings license_validations license_collisions""".split()
)


def celaest_models():
    return [model for label in CELAEST_APPS for model in apps.get_app_config(label).get_models()]


def table_counts() -> dict[str, int]:
    return {model._meta.label: model._base_manager.count() for model in celaest_models()}


def test_every_one_of_the_36_tables_gets_rows_and_a_rerun_adds_none(credentials_file):
    first_logins = seed(credentials_file)
    after_first = table_counts()

    erd_tables = {model._meta.label: model._meta.db_table for model in celaest_models()}
    assert len([label for label, table in erd_tables.items() if table in ERD_TABLES]) == 36
    assert [label for label, count in after_first.items() if count == 0 and erd_tables[label] in ERD_TABLES] == []

    second_logins = seed(credentials_file)
    assert table_counts() == after_first
    assert second_logins == first_logins


def test_the_printed_logins_work(client, credentials_file):
    logins = seed(credentials_file)
    admin_email, admin_password = logins["Staff admin"]
    owner_email, owner_password = logins["Demo owner"]

    assert (admin_email, owner_email) == (ADMIN_EMAIL, OWNER_EMAIL)
    assert len(admin_password) >= 16 and len(owner_password) >= 16
    assert client.login(email=admin_email, password=admin_password)
    assert client.login(email=owner_email, password=owner_password)

    admin = User.objects.get(email=admin_email)
    assert admin.is_superuser and admin.is_staff and admin.is_active
    owner = User.objects.get(email=owner_email)
    assert owner.role == User.Role.OWNER
    assert owner.organization.slug == "demo"
    assert not owner.is_staff


def test_a_rerun_restores_a_changed_password_to_the_printed_one(client, credentials_file):
    logins = seed(credentials_file)
    owner = User.objects.get(email=OWNER_EMAIL)
    owner.set_password("something-else-entirely")
    owner.save()

    assert seed(credentials_file) == logins
    assert client.login(email=OWNER_EMAIL, password=logins["Demo owner"][1])


def test_generated_passwords_are_kept_in_a_private_file(credentials_file):
    logins = seed(credentials_file)

    assert stat.S_IMODE(credentials_file.stat().st_mode) == 0o600
    stored = credentials_file.read_text()
    assert logins["Staff admin"][1] in stored and logins["Demo owner"][1] in stored


def test_passwords_from_the_environment_win(monkeypatch, client, credentials_file):
    monkeypatch.setenv("DEMO_ADMIN_PASSWORD", "Admin-from-env-4821")
    monkeypatch.setenv("DEMO_OWNER_PASSWORD", "Owner-from-env-9173")

    logins = seed(credentials_file)

    assert logins["Staff admin"] == (ADMIN_EMAIL, "Admin-from-env-4821")
    assert logins["Demo owner"] == (OWNER_EMAIL, "Owner-from-env-9173")
    assert client.login(email=OWNER_EMAIL, password="Owner-from-env-9173")
    assert not credentials_file.exists()


def test_a_second_tenant_has_its_own_people_and_data(credentials_file):
    seed(credentials_file)
    demo, acme = Organization.objects.get(slug="demo"), Organization.objects.get(slug="acme")

    for org in (demo, acme):
        roles = set(User.objects.filter(organization=org).values_list("role", flat=True))
        assert roles == {"owner", "admin", "member", "viewer"}
        assert License.objects.filter(organization=org).exists()
        assert ProcessedTask.objects.filter(organization=org).exists()
        assert Order.objects.filter(organization=org).exists()
        assert Webhook.objects.filter(organization=org).exists()
    # Nothing of one tenant points at the other's people.
    assert not ProcessedTask.objects.filter(organization=acme, user__organization=demo).exists()
    assert not Order.objects.filter(organization=acme, user__organization=demo).exists()


def test_licenses_have_hard_to_guess_keys_and_every_status(credentials_file):
    seed(credentials_file)
    keys = list(License.objects.values_list("license_key", flat=True))

    assert len(set(keys)) == len(keys)
    for key in keys:
        # CEL- and six groups of five Crockford base32 characters: 150 random bits.
        assert re.fullmatch(r"CEL(-[0-9A-HJKMNP-TV-Z]{5}){6}", key), key
    assert set(License.objects.values_list("status", flat=True)) == set(License.Status.values)


def test_secrets_are_stored_encrypted_or_hashed(credentials_file):
    seed(credentials_file)

    for key in AIApiKey.objects.all():
        secret = decrypt(key.key_encrypted)
        assert secret.startswith("sk-") and secret.endswith(key.key_hint) and len(key.key_hint) == 4
        assert secret not in key.key_encrypted
        assert key.base_url == "http://127.0.0.1:9100"
    for webhook in Webhook.objects.all():
        secret = decrypt(webhook.secret_encrypted)
        assert secret.startswith("whsec_")
        assert webhook.secret_hash == hash_secret(secret)
    for api_key in UserApiKey.objects.all():
        assert api_key.key_prefix.startswith("cel_") and HEX64.match(api_key.key_hash)
    assert all(HEX64.match(token) for token in UserSession.objects.values_list("session_token", flat=True))


def test_provider_url_follows_the_environment(monkeypatch, credentials_file):
    monkeypatch.setenv("CELAEST_FAKE_PROVIDER_URL", "http://127.0.0.1:9555")
    seed(credentials_file)

    assert set(AIApiKey.objects.values_list("base_url", flat=True)) == {"http://127.0.0.1:9555"}


def test_ai_catalogue_has_one_default_per_provider_and_one_active_prompt_version(credentials_file):
    seed(credentials_file)

    defaults = AIModel.objects.filter(is_default=True).values("provider").annotate(n=Count("id"))
    assert {row["provider"]: row["n"] for row in defaults} == {"openai": 1, "anthropic": 1}
    active = Prompt.objects.filter(is_active=True).values("slug").annotate(n=Count("id"))
    assert all(row["n"] == 1 for row in active)
    assert set(Prompt.objects.values_list("slug", flat=True)) == {row["slug"] for row in active}
    v2 = Prompt.objects.get(slug="summarize-ticket", version=2)
    assert v2.is_active and v2.parent == Prompt.objects.get(slug="summarize-ticket", version=1)


def test_task_costs_come_from_the_model_prices(credentials_file):
    seed(credentials_file)
    completed = ProcessedTask.objects.filter(status="completed").select_related("model")

    assert completed.count() > 100
    for task in completed:
        model = task.model
        expected = (
            (task.tokens_input - task.tokens_cached) * model.cost_per_1k_input
            + task.tokens_cached * model.cost_per_1k_cached_input
            + task.tokens_output * model.cost_per_1k_output
        ) / 1000
        assert task.cost_usd == expected.quantize(Decimal("0.00000001"), rounding=ROUND_HALF_UP)
        assert task.tokens_total == task.tokens_input + task.tokens_output
        assert task.api_key.provider == model.provider
    for batch in TaskBatch.objects.all():
        tasks = ProcessedTask.objects.filter(batch=batch)
        assert tasks.count() == batch.total_tasks
        assert tasks.filter(status="completed").count() == batch.completed_tasks
        assert tasks.filter(status="failed").count() == batch.failed_tasks


def test_usage_logs_add_up_to_the_tasks(credentials_file):
    seed(credentials_file)

    for log in LicenseUsageLog.objects.all():
        tasks = ProcessedTask.objects.filter(
            license=log.license,
            created_at__date__gte=log.period_start,
            created_at__date__lte=log.period_end,
            status__in=["completed", "failed", "running"],
        )
        totals = tasks.aggregate(n=Count("id"), cost=Sum("cost_usd"), tokens=Sum("tokens_input"))
        assert (log.ai_requests_count, log.calculated_cost, log.tokens_input) == (
            totals["n"],
            totals["cost"],
            totals["tokens"],
        )


def test_orders_and_invoices_have_exact_consistent_amounts(credentials_file):
    seed(credentials_file)
    orders = Order.objects.prefetch_related("items")

    assert orders.exists()
    for order in orders:
        assert re.fullmatch(r"ORD-\d{4}-\d{6}", order.order_number)
        assert order.subtotal == sum(item.total for item in order.items.all())
        assert all(item.total == item.unit_price * item.quantity for item in order.items.all())
        assert order.total == order.subtotal - order.discount_total + order.tax_total
        taxable = order.subtotal - order.discount_total
        assert order.tax_total == (taxable * order.tax_rate_percent / 100).quantize(Decimal("0.01"), ROUND_HALF_UP)
    for invoice in Invoice.objects.filter(subscription__isnull=False):  # a subscription's, from its lines
        assert invoice.subtotal == sum(line.amount for line in invoice.lines.all()) > 0
        assert invoice.total == invoice.subtotal - invoice.discount_total + invoice.tax_total
    for invoice in Invoice.objects.filter(order__isnull=False).select_related("order"):
        assert re.fullmatch(r"INV-\d{4}-\d{6}", invoice.invoice_number)
        assert invoice.order.status in ("paid", "refunded")
        # made out as the service makes out a real one (the demo's copy had lost the tax rate)
        assert invoice.billing_details["tax_rate_percent"] == str(invoice.order.tax_rate_percent)
        assert (invoice.subtotal, invoice.discount_total, invoice.tax_total, invoice.total) == (
            invoice.order.subtotal,
            invoice.order.discount_total,
            invoice.order.tax_total,
            invoice.order.total,
        )


def test_negative_scale_is_refused(credentials_file):
    with pytest.raises(CommandError):
        call_command("seed_demo", "--scale", "-1", credentials_file=credentials_file, stdout=StringIO())


def test_help_explains_scale_and_passwords():
    text = Command().create_parser("manage.py", "seed_demo").format_help()

    assert "--scale N" in text and "--credentials-file" in text
    assert "DEMO_ADMIN_PASSWORD" in text and "10,000 processed tasks" in text


@pytest.mark.slow
def test_scale_adds_benchmark_volume_and_a_rerun_adds_none(credentials_file):
    seed(credentials_file, "--scale", "1")
    after_first = table_counts()

    assert after_first["operations.ProcessedTask"] >= 10_000
    assert after_first["ipcontrol.LicenseValidation"] >= 10_000
    assert after_first["analytics.TelemetryEvent"] >= 5_000
    assert after_first["licensing.License"] >= 1_000
    assert after_first["identity.Organization"] >= 12
    assert LicenseValidation.objects.filter(license__isnull=True, result_code="NOT_FOUND").exists()

    seed(credentials_file, "--scale", "1")
    assert table_counts() == after_first


# --- the demo calls nothing outside the machine ---------------------------------------------------


def _is_local(url: str) -> bool:
    """A path on the platform itself, or a loopback host."""
    host = urlsplit(url).hostname
    return (url.startswith("/") and not url.startswith("//")) or host in ("127.0.0.1", "localhost", "::1")


def test_the_demo_points_nothing_active_at_an_outside_host(credentials_file):
    seed(credentials_file)

    assert Webhook.objects.exists()
    assert not Webhook.objects.filter(status=Webhook.Status.ACTIVE).exists()
    # Example endpoints (RFC 2606: .example never resolves), for someone to point at their receiver.
    assert all(urlsplit(url).hostname.endswith(".example") for url in Webhook.objects.values_list("url", flat=True))
    # Nothing left for the sweeper to send.
    assert not WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING).exists()
    urls = list(ProductRelease.objects.values_list("download_url", flat=True))
    assert urls and [url for url in urls if not _is_local(url)] == []
    assert set(AIApiKey.objects.values_list("base_url", flat=True)) == {"http://127.0.0.1:9100"}


def test_a_demo_download_link_leads_to_a_file_the_platform_serves(client, credentials_file):
    seed(credentials_file)
    asset = CustomerAsset.objects.filter(user__email=OWNER_EMAIL, status=CustomerAsset.Status.ACTIVE).first()
    link = services.asset_download_link_create(asset=asset, user=asset.user)

    followed = client.get(reverse("asset-download-follow", kwargs={"asset_id": asset.pk, "token": link.token}))

    assert followed.status_code == 302 and _is_local(followed["Location"])
    served = finders.find(followed["Location"].removeprefix(settings.STATIC_URL).removeprefix("/static/"))
    assert served is not None
    content = open(served, "rb").read()
    assert link.release.checksum_sha256 == hashlib.sha256(content).hexdigest()
    assert link.release.file_size == len(content)


def test_a_rerun_retires_the_outside_urls_an_earlier_seed_stored(credentials_file):
    seed(credentials_file)
    erp = Webhook.objects.get(name__startswith="ERP sync")
    Webhook.objects.filter(pk=erp.pk).update(url="https://erp.demo.example.com/hooks/celaest", status="active")
    ProductRelease.objects.update(download_url="https://downloads.example.com/desk/1.0.0/desk-1.0.0.zip")

    seed(credentials_file)

    erp.refresh_from_db()
    assert (erp.url, erp.status) == ("https://erp.demo.example/hooks/celaest", Webhook.Status.PAUSED)
    assert all(_is_local(url) for url in ProductRelease.objects.values_list("download_url", flat=True))
