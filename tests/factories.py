"""Test data factories, one place for every app (factory_boy)."""

import hashlib
import secrets
from datetime import date, timedelta
from decimal import Decimal

import factory
from django.utils import timezone

from aimesh.models import AIApiKey, AIModel, AIModelFallback, Prompt, Provider
from analytics.models import RoiMetric, TelemetryEvent
from audit.models import AuditLog, SystemEvent
from billing.models import (
    Coupon,
    CreditNote,
    Invoice,
    InvoiceLine,
    Order,
    OrderItem,
    PaymentGateway,
    PaymentMethod,
    PlanBillingTerms,
    Subscription,
    TaxRate,
    UsageAlert,
)
from celaest import crypto
from identity.models import Organization, User
from ipcontrol.models import (
    LicenseCollision,
    LicenseIpBinding,
    LicenseValidation,
    LicenseValidationDaily,
    OfflineCertificate,
)
from licensing.models import License, LicenseToken, LicenseUsageLog, SubscriptionPlan
from marketplace.models import (
    AssetDownload,
    CustomerAsset,
    Product,
    ProductCategory,
    ProductRelease,
    ProductReview,
)
from operations.models import ApiKeyLicense, OrganizationAILicense, ProcessedTask, TaskBatch
from settings_app.models import FeatureFlag, SystemConfig, UserApiKey, UserSession, Webhook, WebhookDelivery

DEFAULT_PASSWORD = "correct-horse-battery-staple"


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization

    name = factory.Sequence(lambda n: f"Organization {n}")
    slug = factory.Sequence(lambda n: f"org-{n}")
    email = factory.LazyAttribute(lambda o: f"billing@{o.slug}.example")
    settings = factory.LazyFunction(lambda: {"currency": "USD", "country": "US", "hourly_rate": "50.00"})
    max_users = 10


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    organization = factory.SubFactory(OrganizationFactory)
    email = factory.Sequence(lambda n: f"user{n}@example.com")
    first_name = "Ada"
    last_name = factory.Sequence(lambda n: f"Lovelace{n}")
    role = User.Role.MEMBER
    password = factory.PostGenerationMethodCall("set_password", DEFAULT_PASSWORD)

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):  # noqa: N805 - factory_boy hook
        if create:
            obj.save()


class StaffUserFactory(UserFactory):
    organization = None
    is_staff = True
    is_superuser = True
    role = User.Role.ADMIN


class SubscriptionPlanFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SubscriptionPlan

    code = factory.Sequence(lambda n: f"plan-{n}")
    name = factory.Sequence(lambda n: f"Plan {n}")
    price_monthly = Decimal("49.00")
    price_yearly = Decimal("490.00")
    limits = factory.LazyFunction(
        lambda: {
            "max_users": 10,
            "ai_requests_per_month": 1000,
            "tokens_per_month": 1_000_000,
            "max_machines": 3,
            "max_batch_size": 100,
        }
    )
    features = factory.LazyFunction(lambda: ["ai_mesh", "marketplace"])


class LicenseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = License

    organization = factory.SubFactory(OrganizationFactory)
    plan = factory.SubFactory(SubscriptionPlanFactory)
    license_key = factory.LazyFunction(lambda: "CEL-" + secrets.token_hex(16).upper())
    status = License.Status.ACTIVE
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=365))


class LicenseTokenFactory(factory.django.DjangoModelFactory):
    """A token of its license (only the hash is stored; the token itself is unknown here)."""

    class Meta:
        model = LicenseToken

    license = factory.SubFactory(LicenseFactory)
    organization = factory.SelfAttribute("license.organization")
    name = "Installer"
    token_hash = factory.LazyFunction(lambda: crypto.hash_secret(LicenseToken.PREFIX + secrets.token_urlsafe(32)))
    token_prefix = "clt_factory"


class LicenseUsageLogFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LicenseUsageLog

    license = factory.SubFactory(LicenseFactory)
    organization = factory.SelfAttribute("license.organization")
    period_start = factory.LazyFunction(lambda: timezone.now().date().replace(day=1))
    period_end = factory.LazyAttribute(lambda o: o.period_start + timedelta(days=27))


class AIModelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AIModel

    provider = Provider.OPENAI
    model_id = factory.Sequence(lambda n: f"gpt-test-{n}")
    display_name = factory.LazyAttribute(lambda o: o.model_id)
    capabilities = factory.LazyFunction(lambda: ["chat", "json"])
    cost_per_1k_input = Decimal("0.000150")
    cost_per_1k_output = Decimal("0.000600")


class AIModelFallbackFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AIModelFallback

    model = factory.SubFactory(AIModelFactory)
    fallback = factory.SubFactory(AIModelFactory)
    position = factory.Sequence(lambda n: n)


class AIApiKeyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AIApiKey

    provider = Provider.OPENAI
    key_name = factory.Sequence(lambda n: f"key-{n}")
    key_encrypted = factory.LazyFunction(lambda: crypto.encrypt("sk-test-" + secrets.token_hex(12)))
    key_hint = "abcd"


class PromptFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Prompt

    slug = factory.Sequence(lambda n: f"prompt-{n}")
    name = factory.LazyAttribute(lambda o: o.slug.title())
    category = "general"
    system_prompt = "You are a helpful assistant."
    user_template = "Summarize: {{ text }}"
    variables = factory.LazyFunction(lambda: [{"name": "text", "type": "string", "required": True}])
    version = 1
    is_active = True


class TaskBatchFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TaskBatch

    organization = factory.SubFactory(OrganizationFactory)
    user = factory.SubFactory(UserFactory, organization=factory.SelfAttribute("..organization"))
    total_tasks = 10


class ProcessedTaskFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ProcessedTask

    organization = factory.SubFactory(OrganizationFactory)
    user = factory.SubFactory(UserFactory, organization=factory.SelfAttribute("..organization"))
    model = factory.SubFactory(AIModelFactory)
    input_text = "Hello"
    status = ProcessedTask.Status.COMPLETED
    tokens_input = 100
    tokens_output = 50
    cost_usd = Decimal("0.000045")
    execution_time_ms = 420


class RoiMetricFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RoiMetric

    organization = factory.SubFactory(OrganizationFactory)
    period_type = RoiMetric.PeriodType.DAY
    period_start = factory.Sequence(lambda n: timezone.now().date() - timedelta(days=n))


class TelemetryEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TelemetryEvent

    organization = factory.SubFactory(OrganizationFactory)
    event_type = "page_view"
    event_name = "dashboard"


class AuditLogFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AuditLog

    action = AuditLog.Action.CREATE
    resource_type = "licensing.license"
    resource_id = "1"


class SystemEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SystemEvent

    event_type = "job.finished"


class UserSessionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = UserSession

    user = factory.SubFactory(UserFactory)
    session_token = factory.LazyFunction(lambda: hashlib.sha256(secrets.token_bytes(32)).hexdigest())
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=14))


class UserApiKeyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = UserApiKey

    user = factory.SubFactory(UserFactory)
    name = "CI key"
    key_hash = factory.LazyFunction(lambda: crypto.hash_secret("cel_" + secrets.token_urlsafe(32)))
    key_prefix = "cel_abcd"


class WebhookFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Webhook

    organization = factory.SubFactory(OrganizationFactory)
    user = factory.SubFactory(UserFactory, organization=factory.SelfAttribute("..organization"))
    name = "Orders hook"
    url = "https://hooks.example.com/celaest"
    secret_encrypted = factory.LazyFunction(lambda: crypto.encrypt("whsec_" + secrets.token_urlsafe(24)))
    secret_hash = factory.LazyFunction(lambda: secrets.token_hex(32))
    events = factory.LazyFunction(lambda: ["order.paid"])


class WebhookDeliveryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WebhookDelivery

    webhook = factory.SubFactory(WebhookFactory)
    organization = factory.SelfAttribute("webhook.organization")
    event_id = factory.Sequence(lambda n: f"msg_{n}")
    event_type = "order.paid"
    payload = factory.LazyFunction(lambda: {"order": "ORD-1"})


class SystemConfigFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SystemConfig

    key = factory.Sequence(lambda n: f"config.key{n}")
    value = 30


class FeatureFlagFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = FeatureFlag

    flag_key = factory.Sequence(lambda n: f"flag-{n}")


class ProductCategoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ProductCategory

    name = factory.Sequence(lambda n: f"Category {n}")
    slug = factory.Sequence(lambda n: f"category-{n}")


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product

    category = factory.SubFactory(ProductCategoryFactory)
    name = factory.Sequence(lambda n: f"Product {n}")
    slug = factory.Sequence(lambda n: f"product-{n}")
    price = Decimal("99.00")
    status = Product.Status.PUBLISHED


class ProductReviewFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ProductReview

    product = factory.SubFactory(ProductFactory)
    user = factory.SubFactory(UserFactory)
    rating = 5


class ProductReleaseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ProductRelease

    product = factory.SubFactory(ProductFactory)
    version = factory.Sequence(lambda n: f"1.{n}.0")
    status = ProductRelease.Status.PUBLISHED
    checksum_sha256 = factory.LazyFunction(lambda: secrets.token_hex(32))


class PaymentGatewayFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PaymentGateway
        django_get_or_create = ("code",)

    name = "Bank transfer"
    code = "manual"
    provider = PaymentGateway.Provider.MANUAL


class PaymentMethodFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PaymentMethod

    user = factory.SubFactory(UserFactory)
    organization = factory.SelfAttribute("user.organization")
    type = PaymentMethod.Type.CARD
    card_brand = PaymentMethod.CardBrand.VISA
    card_last4 = "4242"
    exp_month = 12
    exp_year = 2030


class CouponFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Coupon

    code = factory.Sequence(lambda n: f"SAVE{n}")
    discount_type = Coupon.DiscountType.PERCENTAGE
    discount_value = Decimal("10")
    valid_from = factory.LazyFunction(lambda: timezone.now() - timedelta(days=1))
    valid_until = factory.LazyFunction(lambda: timezone.now() + timedelta(days=30))


class TaxRateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TaxRate

    name = "VAT"
    code = factory.Sequence(lambda n: f"vat-{n}")
    rate = Decimal("21.000")
    country_code = "ES"


class OrderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Order

    order_number = factory.Sequence(lambda n: f"ORD-2026-{n:06d}")
    organization = factory.SubFactory(OrganizationFactory)
    user = factory.SubFactory(UserFactory, organization=factory.SelfAttribute("..organization"))
    gateway = factory.SubFactory(PaymentGatewayFactory)
    subtotal = Decimal("99.00")
    total = Decimal("99.00")


class OrderItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = OrderItem

    order = factory.SubFactory(OrderFactory)
    product = factory.SubFactory(ProductFactory)
    quantity = 1
    unit_price = Decimal("99.00")
    total = Decimal("99.00")


class InvoiceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Invoice

    invoice_number = factory.Sequence(lambda n: f"INV-2026-{n:06d}")
    order = factory.SubFactory(OrderFactory)
    organization = factory.SelfAttribute("order.organization")
    user = factory.SelfAttribute("order.user")
    total = Decimal("99.00")


class InvoiceLineFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = InvoiceLine

    invoice = factory.SubFactory(InvoiceFactory)
    kind = InvoiceLine.Kind.PLAN
    description = "Pro plan, one month"
    amount = Decimal("99.00")
    position = factory.Sequence(lambda n: n)


class CustomerAssetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CustomerAsset

    organization = factory.SubFactory(OrganizationFactory)
    product = factory.SubFactory(ProductFactory)
    user = factory.SubFactory(UserFactory, organization=factory.SelfAttribute("..organization"))


class AssetDownloadFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AssetDownload

    asset = factory.SubFactory(CustomerAssetFactory)
    release = factory.SubFactory(ProductReleaseFactory, product=factory.SelfAttribute("..asset.product"))
    user = factory.SelfAttribute("asset.user")
    ip_address = "203.0.113.7"


class LicenseIpBindingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LicenseIpBinding

    license = factory.SubFactory(LicenseFactory)
    organization = factory.SelfAttribute("license.organization")
    machine_id = factory.Sequence(lambda n: f"machine-{n}")
    ip_address = "198.51.100.10"
    hostname = "workstation"


class LicenseValidationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LicenseValidation

    license = factory.SubFactory(LicenseFactory)
    organization = factory.SelfAttribute("license.organization")
    ip_address = "198.51.100.10"
    is_valid = True
    result_code = "VALID"


class LicenseValidationDailyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LicenseValidationDaily

    license = factory.SubFactory(LicenseFactory)
    organization = factory.SelfAttribute("license.organization")
    day = factory.Sequence(lambda n: date(2026, 1, 1) + timedelta(days=n))
    result_code = "VALID"
    attempts = 3


class LicenseCollisionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LicenseCollision

    license = factory.SubFactory(LicenseFactory)
    organization = factory.SelfAttribute("license.organization")
    ip_binding_a = factory.SubFactory(LicenseIpBindingFactory, license=factory.SelfAttribute("..license"))
    ip_binding_b = factory.SubFactory(LicenseIpBindingFactory, license=factory.SelfAttribute("..license"))
    collision_type = LicenseCollision.CollisionType.OVER_LIMIT
    severity = LicenseCollision.Severity.HIGH


class OfflineCertificateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = OfflineCertificate

    license = factory.SubFactory(LicenseFactory)
    organization = factory.SelfAttribute("license.organization")
    kind = OfflineCertificate.Kind.CERTIFICATE
    fingerprint = factory.Sequence(lambda n: f"machine-{n}")
    key_id = "test-key"
    document_sha256 = factory.LazyFunction(lambda: hashlib.sha256(secrets.token_bytes(16)).hexdigest())
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(hours=72))


class PlanBillingTermsFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PlanBillingTerms

    plan = factory.SubFactory(SubscriptionPlanFactory)


def _subscription_status(subscription) -> str:
    """Active, unless the organization already has a live subscription (one per organization)."""
    live = Subscription.objects.filter(organization=subscription.organization).exclude(status="cancelled")
    return Subscription.Status.CANCELLED if live.exists() else Subscription.Status.ACTIVE


class SubscriptionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Subscription

    organization = factory.SubFactory(OrganizationFactory)
    user = factory.SubFactory(UserFactory, organization=factory.SelfAttribute("..organization"))
    license = factory.SubFactory(LicenseFactory, organization=factory.SelfAttribute("..organization"))
    plan = factory.SelfAttribute("license.plan")
    interval = Subscription.Interval.MONTH
    status = factory.LazyAttribute(_subscription_status)
    gateway = factory.SubFactory(PaymentGatewayFactory)
    billing_anchor = factory.LazyFunction(timezone.now)
    periods_billed = 1
    current_period_start = factory.SelfAttribute("billing_anchor")
    current_period_end = factory.LazyAttribute(lambda o: o.billing_anchor + timedelta(days=30))


class CreditNoteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CreditNote

    credit_note_number = factory.Sequence(lambda n: f"CN-2026-{n:06d}")
    organization = factory.SubFactory(OrganizationFactory)
    invoice = factory.LazyAttribute(lambda o: InvoiceFactory(order=OrderFactory(organization=o.organization)))
    subtotal = Decimal("10.00")
    total = Decimal("10.00")
    reason = "Service credit"


class UsageAlertFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = UsageAlert

    subscription = factory.SubFactory(SubscriptionFactory)
    organization = factory.SelfAttribute("subscription.organization")
    period_start = factory.Sequence(lambda n: date(2026, 1, 1) + timedelta(days=31 * n))
    metric = "ai_requests"
    threshold_percent = 80
    used = Decimal("80")
    included = Decimal("100")


class ApiKeyLicenseFactory(factory.django.DjangoModelFactory):
    """A user API key bound to a license of its user's organization."""

    class Meta:
        model = ApiKeyLicense

    api_key = factory.SubFactory(UserApiKeyFactory)
    organization = factory.LazyAttribute(lambda o: o.api_key.user.organization)
    license = factory.LazyAttribute(lambda o: LicenseFactory(organization=o.organization))


class OrganizationAILicenseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = OrganizationAILicense

    organization = factory.SubFactory(OrganizationFactory)
    license = factory.LazyAttribute(lambda o: LicenseFactory(organization=o.organization))
