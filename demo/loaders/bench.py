"""Benchmark volume (``seed_demo --scale N``): N times 10 organizations with their licenses, tasks,
validations, telemetry, audit, webhook and billing rows.
"""

import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from analytics.models import TelemetryEvent
from audit.models import AuditLog, SystemEvent
from billing.models import (
    Invoice,
    Order,
    OrderItem,
    PaymentMethod,
)
from demo.loaders.analytics import telemetry_row
from demo.loaders.base import (
    BENCH_ROLES,
    BENCH_WEBHOOK_NAME,
    INSERT_BATCH,
    UNUSABLE_PASSWORD,
    USER_AGENTS,
    DemoRun,
    OutputStream,
    backdate_issued_at,
    demo_uuid,
    fingerprint,
    insert_missing,
    missing_chunks,
    moment_in_history,
    person_email,
    section,
)
from demo.loaders.billing import TAX_BY_COUNTRY, build_order
from demo.loaders.identity import ROLE_SCOPES
from demo.loaders.ipcontrol import rollup_validation_history
from demo.loaders.marketplace import PUBLISHED_PRODUCTS
from demo.loaders.operations import PROMPT_SLUGS, Router, task_row
from demo.loaders.settings import DEVICES, session_token_hash, user_api_key_fields, webhook_secret_fields
from identity.models import Organization, User
from ipcontrol.models import LicenseCollision, LicenseIpBinding, LicenseValidation
from licensing.models import License
from licensing.services import license_key_generate
from marketplace.models import (
    AssetDownload,
    CustomerAsset,
    ProductReview,
)
from operations.models import ProcessedTask, TaskBatch
from settings_app.models import UserApiKey, UserSession, Webhook, WebhookDelivery

BENCH_SLUG_PREFIX = "bench-"


# Per unit of --scale.
BENCH_ORGS_PER_SCALE = 10
BENCH_LICENSES_PER_ORG = 100
BENCH_TASKS_PER_ORG = 1_000
BENCH_VALIDATIONS_PER_LICENSE = 10
BENCH_TELEMETRY_PER_ORG = 500
BENCH_AUDIT_PER_ORG = 200
BENCH_ORDERS_PER_ORG = 20
BENCH_DELIVERIES_PER_WEBHOOK = 100
BENCH_BATCH_SIZE = 20  # tasks per benchmark batch; the first tenth of the tasks run in batches


_BENCH_NAMES = ("Northwind", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay", "Soylent", "Tyrell", "Wonka")
_BENCH_TRADES = ("Logistics", "Retail", "Health", "Legal", "Media", "Energy", "Foods", "Labs")
_BENCH_COUNTRIES = ("US", "ES", "DE", "FR", "GB", "MX")


@dataclass
class _Bench:
    """Benchmark tenants. Everything is indexed so a row's tenant follows from its index alone:
    organization ``n`` owns licenses ``100n..100n+99``, tasks ``1000n..``, and so on."""

    now: datetime
    org_count: int
    org_ids: list[uuid.UUID] = field(default_factory=list)
    org_countries: list[str] = field(default_factory=list)
    org_names: list[str] = field(default_factory=list)
    user_ids: list[dict[str, uuid.UUID]] = field(default_factory=list)  # per org, by role
    license_ids: list[uuid.UUID] = field(default_factory=list)

    def binding_id(self, license_index: int, machine: int) -> uuid.UUID:
        return demo_uuid("bench-binding", license_index, machine)


def _bench_slug(n: int) -> str:
    return f"{BENCH_SLUG_PREFIX}{n + 1:04d}"


def _bench_name(n: int) -> str:
    trade = _BENCH_TRADES[(n // len(_BENCH_NAMES)) % len(_BENCH_TRADES)]
    return f"{_BENCH_NAMES[n % len(_BENCH_NAMES)]} {trade} {n + 1:04d}"


def _bench_license_status(j: int) -> str:
    bucket = (j * 7_919) % 100  # a fixed pseudo-random spread, independent of --scale
    if bucket < 70:
        return License.Status.ACTIVE
    if bucket < 80:
        return License.Status.TRIAL
    if bucket < 85:
        return License.Status.SUSPENDED
    if bucket < 95:
        return License.Status.EXPIRED
    return License.Status.REVOKED


def seed_bench(demo: DemoRun, *, scale: int, stdout: OutputStream | None) -> list[uuid.UUID]:
    """Add ``scale`` units of benchmark volume; return the benchmark organizations' ids."""
    bench = _Bench(now=demo.now, org_count=scale * BENCH_ORGS_PER_SCALE)
    with section("bench identity", [Organization, User], stdout):
        _bench_identity(bench)
    with section("bench licensing", [License], stdout):
        _bench_licenses(demo, bench)
    with section("bench ipcontrol", [LicenseIpBinding, LicenseValidation, LicenseCollision], stdout):
        _bench_ipcontrol(bench)
    with section("bench operations", [TaskBatch, ProcessedTask], stdout):
        _bench_operations(demo, bench)
    with section("bench telemetry & audit", [TelemetryEvent, AuditLog, SystemEvent], stdout):
        _bench_events(bench)
    with section("bench settings", [UserSession, UserApiKey, Webhook, WebhookDelivery], stdout):
        _bench_settings(bench)
    tables = [PaymentMethod, Order, OrderItem, Invoice, CustomerAsset, AssetDownload, ProductReview]
    with section("bench billing & assets", tables, stdout):
        _bench_commerce(demo, bench)
    return bench.org_ids


def _bench_identity(bench: _Bench) -> None:
    rng = random.Random("bench-orgs")
    slugs = [_bench_slug(n) for n in range(bench.org_count)]
    bench.org_countries = [_BENCH_COUNTRIES[n % len(_BENCH_COUNTRIES)] for n in range(bench.org_count)]
    bench.org_names = [_bench_name(n) for n in range(bench.org_count)]

    def build_org(n: int, pk: uuid.UUID) -> Organization:
        return Organization(
            id=pk,
            name=bench.org_names[n],
            slug=slugs[n],
            email=f"billing@{slugs[n]}.celaest.local",
            settings={
                "currency": "USD",
                "country": bench.org_countries[n],
                "hourly_rate": f"{rng.randint(30, 90)}.00",
                "benchmark": True,
            },
            max_users=10,
            created_at=bench.now - timedelta(days=rng.randint(60, 700)),
        )

    insert_missing(Organization, [demo_uuid("bench-org", n) for n in range(bench.org_count)], build_org)
    by_slug = dict(Organization.all_objects.filter(slug__in=slugs).values_list("slug", "pk"))
    bench.org_ids = [by_slug[slug] for slug in slugs]

    pairs = [(n, role) for n in range(bench.org_count) for role in BENCH_ROLES]

    def build_user(i: int, pk: uuid.UUID) -> User:
        n, role = pairs[i]
        return User(
            id=pk,
            organization_id=bench.org_ids[n],
            email=person_email(slugs[n], role),
            first_name=role.capitalize(),
            last_name=bench.org_names[n].split()[0],
            role=role,
            scopes=ROLE_SCOPES[role],
            password=UNUSABLE_PASSWORD,
            created_at=bench.now - timedelta(days=50),
        )

    insert_missing(User, [demo_uuid("bench-user", n, role) for n, role in pairs], build_user)
    emails = [person_email(slugs[n], role) for n, role in pairs]
    by_email = dict(User.all_objects.filter(email__in=emails).values_list("email", "pk"))
    bench.user_ids = [
        {role: by_email[person_email(slugs[n], role)] for role in BENCH_ROLES} for n in range(bench.org_count)
    ]


def _bench_licenses(demo: DemoRun, bench: _Bench) -> None:
    rng = random.Random("bench-licenses")
    plans = [demo.plans[code] for code in ("starter", "pro", "pro", "enterprise")]
    count = bench.org_count * BENCH_LICENSES_PER_ORG
    bench.license_ids = [demo_uuid("bench-license", j) for j in range(count)]

    def build(j: int, pk: uuid.UUID) -> License:
        status = _bench_license_status(j)
        issued = bench.now - timedelta(days=rng.randint(20, 700))
        expires = issued + timedelta(days=365 if status != License.Status.TRIAL else 30)
        if status == License.Status.EXPIRED:
            expires = bench.now - timedelta(days=rng.randint(1, 120))
        elif status in (License.Status.ACTIVE, License.Status.TRIAL) and expires < bench.now:
            expires = bench.now + timedelta(days=rng.randint(5, 360))
        return License(
            id=pk,
            organization_id=bench.org_ids[j // BENCH_LICENSES_PER_ORG],
            plan=plans[j % len(plans)],
            license_key=license_key_generate(),
            status=status,
            status_reason="Chargeback" if status == License.Status.SUSPENDED else "",
            expires_at=expires,
            suspended_at=bench.now - timedelta(days=2) if status == License.Status.SUSPENDED else None,
            revoked_at=bench.now - timedelta(days=9) if status == License.Status.REVOKED else None,
            created_at=issued,
        )

    backdate_issued_at(insert_missing(License, bench.license_ids, build))


def _bench_ipcontrol(bench: _Bench) -> None:
    rng = random.Random("bench-ipcontrol")
    machines = [(j, m) for j in range(len(bench.license_ids)) for m in range(2)]

    def build_binding(i: int, pk: uuid.UUID) -> LicenseIpBinding:
        j, m = machines[i]
        first_seen = moment_in_history(rng, bench.now, days=120)
        return LicenseIpBinding(
            id=pk,
            organization_id=bench.org_ids[j // BENCH_LICENSES_PER_ORG],
            license_id=bench.license_ids[j],
            ip_address=f"10.{(j >> 8) & 255}.{j & 255}.{10 + m}",
            machine_id=fingerprint("bench-machine", j, m),
            hostname=f"ws-{j:06d}-{m}",
            is_active=m == 0 or j % 4 != 0,
            first_seen=first_seen,
            activated_at=first_seen,
            last_seen=moment_in_history(rng, bench.now, days=3),
            created_at=first_seen,
        )

    insert_missing(LicenseIpBinding, [bench.binding_id(j, m) for j, m in machines], build_binding)

    count = len(bench.license_ids) * BENCH_VALIDATIONS_PER_LICENSE

    def build_validation(i: int, pk: uuid.UUID) -> LicenseValidation:
        j = i // BENCH_VALIDATIONS_PER_LICENSE
        m = i % 2
        if i % 33 == 0:  # a key nobody issued
            return LicenseValidation(
                id=pk,
                ip_address=f"198.51.100.{i % 250}",
                machine_id=fingerprint("bench-unknown", i),
                hostname="unknown",
                result_code="NOT_FOUND",
                failure_reason="No license with this key",
                created_at=moment_in_history(rng, bench.now),
            )
        status = _bench_license_status(j)
        valid = status in (License.Status.ACTIVE, License.Status.TRIAL)
        return LicenseValidation(
            id=pk,
            license_id=bench.license_ids[j],
            organization_id=bench.org_ids[j // BENCH_LICENSES_PER_ORG],
            ip_binding_id=bench.binding_id(j, m),
            ip_address=f"10.{(j >> 8) & 255}.{j & 255}.{10 + m}",
            machine_id=fingerprint("bench-machine", j, m),
            hostname=f"ws-{j:06d}-{m}",
            is_valid=valid,
            result_code="VALID" if valid else str(status).upper(),
            failure_reason="" if valid else f"License is {status}",
            created_at=moment_in_history(rng, bench.now),
        )

    insert_missing(LicenseValidation, [demo_uuid("bench-validation", i) for i in range(count)], build_validation)
    rollup_validation_history(bench.now)

    collision_count = len(bench.license_ids) // 50

    def build_collision(c: int, pk: uuid.UUID) -> LicenseCollision:
        j = c * 50
        resolved = bench.now - timedelta(days=rng.randint(1, 20)) if c % 3 == 0 else None
        detected = (resolved or bench.now) - timedelta(hours=rng.randint(2, 72))
        return LicenseCollision(
            id=pk,
            organization_id=bench.org_ids[j // BENCH_LICENSES_PER_ORG],
            license_id=bench.license_ids[j],
            ip_binding_a_id=bench.binding_id(j, 0),
            ip_binding_b_id=bench.binding_id(j, 1),
            collision_type=LicenseCollision.CollisionType.OVER_LIMIT,
            severity=rng.choice(list(LicenseCollision.Severity.values)),
            details={"max_machines": 1, "active_machines": 2},
            detected_at=detected,
            last_seen_at=resolved or bench.now - timedelta(minutes=rng.randint(1, 90)),
            resolved_at=resolved,
            auto_resolved=resolved is not None,
            created_at=detected,
        )

    insert_missing(LicenseCollision, [demo_uuid("bench-collision", c) for c in range(collision_count)], build_collision)


def _bench_operations(demo: DemoRun, bench: _Bench) -> None:
    rng = random.Random("bench-operations")
    router = Router.from_demo(demo)
    prompts = [demo.active_prompt(slug) for slug in PROMPT_SLUGS]
    count = bench.org_count * BENCH_TASKS_PER_ORG
    batched = count // 10  # tasks [0, batched) run in batches of BENCH_BATCH_SIZE
    batch_count = batched // BENCH_BATCH_SIZE

    def batch_task_status(i: int) -> str:
        b, position = divmod(i, BENCH_BATCH_SIZE)
        failed = b % 3 == 0 and position == BENCH_BATCH_SIZE - 1
        return ProcessedTask.Status.FAILED if failed else ProcessedTask.Status.COMPLETED

    def build_batch(b: int, pk: uuid.UUID) -> TaskBatch:
        n = (b * BENCH_BATCH_SIZE) // BENCH_TASKS_PER_ORG
        failed = sum(
            batch_task_status(i) == ProcessedTask.Status.FAILED
            for i in range(b * BENCH_BATCH_SIZE, (b + 1) * BENCH_BATCH_SIZE)
        )
        created = moment_in_history(rng, bench.now)
        prompt = prompts[b % len(prompts)]
        return TaskBatch(
            id=pk,
            organization_id=bench.org_ids[n],
            user_id=bench.user_ids[n]["admin"],
            license_id=bench.license_ids[n * BENCH_LICENSES_PER_ORG],
            prompt=prompt,
            model=router.models_by_prompt[prompt.pk],
            name=f"Nightly run #{b + 1}",
            status=TaskBatch.Status.PARTIALLY_FAILED if failed else TaskBatch.Status.COMPLETED,
            total_tasks=BENCH_BATCH_SIZE,
            completed_tasks=BENCH_BATCH_SIZE - failed,
            failed_tasks=failed,
            started_at=created,
            finished_at=created + timedelta(minutes=BENCH_BATCH_SIZE),
            created_at=created,
        )

    batch_ids = [demo_uuid("bench-batch", b) for b in range(batch_count)]
    insert_missing(TaskBatch, batch_ids, build_batch)
    batch_meta = dict(
        TaskBatch.objects.filter(pk__in=batch_ids).values_list("pk", "created_at")
    )  # batched tasks start when their batch did

    def build_task(i: int, pk: uuid.UUID) -> ProcessedTask:
        n = i // BENCH_TASKS_PER_ORG
        users = bench.user_ids[n]
        license_index = n * BENCH_LICENSES_PER_ORG + (i % BENCH_LICENSES_PER_ORG)
        if i < batched:
            b, position = divmod(i, BENCH_BATCH_SIZE)
            return task_row(
                rng=rng,
                router=router,
                pk=pk,
                organization_id=bench.org_ids[n],
                user_id=users["admin"],
                license_id=bench.license_ids[n * BENCH_LICENSES_PER_ORG],
                prompt=prompts[b % len(prompts)],
                status=batch_task_status(i),
                created_at=batch_meta[batch_ids[b]] + timedelta(seconds=position * 3),
                batch_id=batch_ids[b],
                batch_index=position,
            )
        return task_row(
            rng=rng,
            router=router,
            pk=pk,
            organization_id=bench.org_ids[n],
            user_id=users[rng.choice(("owner", "admin", "member"))],
            license_id=bench.license_ids[license_index],
            prompt=rng.choice(prompts),
            status=ProcessedTask.Status.FAILED if rng.random() < 0.05 else ProcessedTask.Status.COMPLETED,
            created_at=moment_in_history(rng, bench.now),
        )

    insert_missing(ProcessedTask, [demo_uuid("bench-task", i) for i in range(count)], build_task)


def _bench_events(bench: _Bench) -> None:
    rng = random.Random("bench-events")
    telemetry_count = bench.org_count * BENCH_TELEMETRY_PER_ORG

    def build_telemetry(i: int, pk: uuid.UUID) -> TelemetryEvent:
        n = i // BENCH_TELEMETRY_PER_ORG
        user_id = bench.user_ids[n][BENCH_ROLES[i % len(BENCH_ROLES)]] if i % 10 else None
        return telemetry_row(rng, pk=pk, organization_id=bench.org_ids[n], user_id=user_id, now=bench.now)

    insert_missing(TelemetryEvent, [demo_uuid("bench-telemetry", i) for i in range(telemetry_count)], build_telemetry)

    audit_count = bench.org_count * BENCH_AUDIT_PER_ORG
    actions = (
        ("login", "identity.user", {}),
        ("create", "operations.taskbatch", {"status": [None, "pending"]}),
        ("update", "licensing.license", {"notes": ["", "Renewed by phone"]}),
        ("api_key_used", "settings_app.userapikey", {}),
        ("logout", "identity.user", {}),
    )

    def build_audit(i: int, pk: uuid.UUID) -> AuditLog:
        n = i // BENCH_AUDIT_PER_ORG
        action, resource_type, changes = actions[i % len(actions)]
        user_id = bench.user_ids[n][BENCH_ROLES[i % 3]]
        resource_id = user_id if resource_type == "identity.user" else demo_uuid("bench-resource", i)
        return AuditLog(
            id=pk,
            user_id=user_id,
            organization_id=bench.org_ids[n],
            action=action,
            resource_type=resource_type,
            resource_id=str(resource_id),
            changes=changes,
            ip_address=f"10.{n % 256}.{i % 256}.{1 + i % 200}",
            user_agent=USER_AGENTS[i % len(USER_AGENTS)],
            source="api",
            created_at=moment_in_history(rng, bench.now),
        )

    insert_missing(AuditLog, [demo_uuid("bench-audit", i) for i in range(audit_count)], build_audit)

    event_count = bench.org_count * 10

    def build_event(i: int, pk: uuid.UUID) -> SystemEvent:
        n = i // 10
        kind = i % 3
        return SystemEvent(
            id=pk,
            event_type=("roi.aggregated", "license.expired", "collision.detected")[kind],
            severity=(SystemEvent.Severity.INFO, SystemEvent.Severity.INFO, SystemEvent.Severity.WARNING)[kind],
            source=("celery.beat", "licensing", "ipcontrol")[kind],
            message=f"{bench.org_names[n]}: {('ROI aggregated', 'license expired', 'collision detected')[kind]}",
            organization_id=bench.org_ids[n],
            data={"benchmark": True},
            created_at=moment_in_history(rng, bench.now),
        )

    insert_missing(SystemEvent, [demo_uuid("bench-system-event", i) for i in range(event_count)], build_event)


def _bench_settings(bench: _Bench) -> None:
    rng = random.Random("bench-settings")
    users = [(n, role) for n in range(bench.org_count) for role in BENCH_ROLES]

    def build_session(i: int, pk: uuid.UUID) -> UserSession:
        n, role = users[i]
        last = moment_in_history(rng, bench.now, days=7)
        return UserSession(
            id=pk,
            user_id=bench.user_ids[n][role],
            session_token=session_token_hash(),
            ip_address=f"10.{n % 256}.0.{1 + i % 250}",
            user_agent=USER_AGENTS[i % len(USER_AGENTS)],
            device_info=DEVICES[i % len(DEVICES)],
            is_active=last > bench.now - timedelta(days=5),
            last_activity_at=last,
            expires_at=last + timedelta(days=14),
            created_at=last - timedelta(hours=2),
        )

    insert_missing(UserSession, [demo_uuid("bench-session", n, role) for n, role in users], build_session)

    def build_key(n: int, pk: uuid.UUID) -> UserApiKey:
        return UserApiKey(
            id=pk,
            user_id=bench.user_ids[n]["owner"],
            name="Automation",
            **user_api_key_fields(),
            scopes=["tasks:run", "licenses:read"],
            usage_count=rng.randint(0, 50_000),
            created_at=bench.now - timedelta(days=40),
        )

    insert_missing(UserApiKey, [demo_uuid("bench-api-key", n) for n in range(bench.org_count)], build_key)

    webhook_ids = [demo_uuid("bench-webhook", n) for n in range(bench.org_count)]

    def build_webhook(n: int, pk: uuid.UUID) -> Webhook:
        return Webhook(
            id=pk,
            organization_id=bench.org_ids[n],
            user_id=bench.user_ids[n]["owner"],
            name=BENCH_WEBHOOK_NAME,
            url=f"https://erp.{_bench_slug(n)}.example.com/hooks/celaest",
            **webhook_secret_fields(),
            status=Webhook.Status.PAUSED,  # example endpoints: the benchmark must call nothing outside
            events=["task.completed", "batch.completed", "license.suspended"],
            created_at=bench.now - timedelta(days=40),
        )

    insert_missing(Webhook, webhook_ids, build_webhook)
    pairs = [(n, k) for n in range(bench.org_count) for k in range(BENCH_DELIVERIES_PER_WEBHOOK)]

    def build_delivery(i: int, pk: uuid.UUID) -> WebhookDelivery:
        n, k = pairs[i]
        created = moment_in_history(rng, bench.now)
        ok = k % 10 != 0
        return WebhookDelivery(
            id=pk,
            webhook_id=webhook_ids[n],
            organization_id=bench.org_ids[n],
            event_id=f"msg_{demo_uuid('bench-event', n, k).hex}",
            event_type="task.completed",
            payload={"type": "task.completed", "timestamp": created.isoformat(), "data": {"n": k}},
            status=WebhookDelivery.Status.SUCCEEDED if ok else WebhookDelivery.Status.FAILED,
            response_status=200 if ok else 500,
            error="" if ok else "HTTP 500",
            duration_ms=rng.randint(40, 900),
            delivered_at=created if ok else None,
            created_at=created,
        )

    insert_missing(WebhookDelivery, [demo_uuid("bench-delivery", n, k) for n, k in pairs], build_delivery)


def _bench_commerce(demo: DemoRun, bench: _Bench) -> None:
    rng = random.Random("bench-commerce")
    stripe, manual = demo.gateways["stripe"], demo.gateways["manual"]

    def build_method(n: int, pk: uuid.UUID) -> PaymentMethod:
        return PaymentMethod(
            id=pk,
            organization_id=bench.org_ids[n],
            user_id=bench.user_ids[n]["owner"],
            gateway=stripe,
            type=PaymentMethod.Type.CARD,
            card_brand=rng.choice([PaymentMethod.CardBrand.VISA, PaymentMethod.CardBrand.MASTERCARD]),
            card_last4=f"{rng.randint(0, 9999):04d}",
            exp_month=rng.randint(1, 12),
            exp_year=bench.now.year + rng.randint(1, 4),
            gateway_token=f"pm_{pk.hex[:24]}",
            is_default=not PaymentMethod.objects.filter(user_id=bench.user_ids[n]["owner"], is_default=True).exists(),
        )

    insert_missing(PaymentMethod, [demo_uuid("bench-payment-method", n) for n in range(bench.org_count)], build_method)

    products = [demo.products[slug] for slug in PUBLISHED_PRODUCTS]
    orgs = {org.pk: org for org in Organization.all_objects.filter(pk__in=bench.org_ids)}
    published = {
        product.pk: [r for (slug, _), r in demo.releases.items() if slug == product.slug and r.status == "published"]
        for product in products
    }
    order_ids = [demo_uuid("bench-order", i) for i in range(bench.org_count * BENCH_ORDERS_PER_ORG)]
    statuses = [Order.Status.PAID] * 15 + [Order.Status.PENDING] * 2 + [Order.Status.CANCELLED] * 2
    statuses += [Order.Status.REFUNDED]
    for positions in missing_chunks(Order, order_ids):
        orders, items, invoices, assets, downloads = [], [], [], [], []
        # Numbers follow time within each chunk, as the billing service would have handed them out.
        dated = sorted((moment_in_history(rng, bench.now, days=180), i) for i in positions)
        for created_at, i in dated:
            n = i // BENCH_ORDERS_PER_ORG
            org = orgs[bench.org_ids[n]]
            owner_id = bench.user_ids[n]["owner"]
            lines = [(product, rng.randint(1, 3)) for product in rng.sample(products, rng.randint(1, 2))]
            status = statuses[i % len(statuses)]
            order, order_items, invoice = build_order(
                demo,
                pk=order_ids[i],
                organization=org,
                user_id=owner_id,
                user_name=f"Owner {org.name}",
                gateway=stripe if i % 3 else manual,
                status=status,
                lines=lines,
                coupon=demo.coupons["WELCOME10"] if i % 5 == 0 else None,
                tax_rate=demo.tax_rates[TAX_BY_COUNTRY[bench.org_countries[n]]],
                created_at=created_at,
            )
            orders.append(order)
            items += order_items
            if invoice is not None:
                invoices.append(invoice)
            if status == Order.Status.PAID:
                product = lines[0][0]
                asset = CustomerAsset(
                    id=demo_uuid("bench-asset", i),
                    organization_id=org.pk,
                    product=product,
                    user_id=owner_id,
                    license_id=bench.license_ids[n * BENCH_LICENSES_PER_ORG] if product.plan_id else None,
                    order=order,
                    granted_at=order.paid_at,
                    created_at=order.paid_at,
                )
                assets.append(asset)
                for k, release in enumerate(published[product.pk]):
                    downloads.append(
                        AssetDownload(
                            id=demo_uuid("bench-download", i, k),
                            asset=asset,
                            release=release,
                            user_id=owner_id,
                            ip_address=f"10.{n % 256}.1.{1 + k}",
                            user_agent=USER_AGENTS[3],
                            created_at=order.paid_at + timedelta(hours=1 + k),
                        )
                    )
        Order.objects.bulk_create(orders, batch_size=INSERT_BATCH)
        OrderItem.objects.bulk_create(items, batch_size=INSERT_BATCH, ignore_conflicts=True)
        Invoice.objects.bulk_create(invoices, batch_size=INSERT_BATCH, ignore_conflicts=True)
        CustomerAsset.objects.bulk_create(assets, batch_size=INSERT_BATCH, ignore_conflicts=True)
        AssetDownload.objects.bulk_create(downloads, batch_size=INSERT_BATCH, ignore_conflicts=True)

    reviews = [
        (n, role, slug)
        for n in range(bench.org_count)
        for role in ("owner", "admin")
        for slug in PUBLISHED_PRODUCTS[:2]
    ]

    def build_review(i: int, pk: uuid.UUID) -> ProductReview:
        n, role, slug = reviews[i]
        rating = rng.choice([5, 5, 4, 4, 4, 3, 2, 1])
        return ProductReview(
            id=pk,
            product=demo.products[slug],
            user_id=bench.user_ids[n][role],
            rating=rating,
            title=("Does the job", "Great value", "Needs work", "Excellent support")[rating % 4],
            comment="Benchmark review.",
            is_verified=role == "owner",
            created_at=moment_in_history(rng, bench.now, days=90),
        )

    insert_missing(ProductReview, [demo_uuid("bench-review", n, role, slug) for n, role, slug in reviews], build_review)
