"""Demo AI task batches and processed tasks, costed by the operations service's ``usage_cost``."""

import json
import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from aimesh.models import AIApiKey, AIModel, Prompt, Provider
from aimesh.providers import Usage
from demo.loaders.base import DEMO_ORG_SLUG, SECOND_ORG_SLUG, DemoRun, demo_uuid, insert_missing, moment_in_history
from operations.models import ProcessedTask, TaskBatch
from operations.services import usage_cost

_TICKETS = (
    "The desktop app crashes when I export the monthly PDF report since the 1.1 update. Windows 11, 16 GB RAM.",
    "We were charged twice for the Pro plan this month. Please refund one of the charges.",
    "License validation fails on our new build server with 'too many machines' although we removed two.",
    "How do I give a viewer access to the ROI dashboard without letting them run tasks?",
    "Batch of 300 invoices stuck at 42% since yesterday evening, no error shown.",
)
_INVOICES = (
    ("Invoice 2291 from Northwind Traders, total 1,240.50 EUR, due 2026-04-30.", "Northwind Traders", "1240.50", "EUR"),
    ("Globex Ltd. invoice GX-7781: 3 x consulting days, 2,700.00 GBP, net 30.", "Globex Ltd.", "2700.00", "GBP"),
    (
        "Factura F-2026-118 Suministros Ortiz S.L. Importe total 845,20 EUR IVA incluido.",
        "Suministros Ortiz",
        "845.20",
        "EUR",
    ),
    ("Initech invoice #5521 for TPS report automation, USD 4,950.00, due on receipt.", "Initech", "4950.00", "USD"),
)
_TRANSLATIONS = (
    ("Your license will expire in 7 days. Renew it to keep your machines activated.", "Su licencia caduca en 7 días."),
    ("Batch completed: 48 of 50 documents processed successfully.", "Lote completado: 48 de 50 documentos procesados."),
    ("Download the latest release from your customer portal.", "Descargue la última versión desde su portal."),
)


def _task_io(rng: random.Random, prompt: Prompt) -> tuple[str, dict, str, dict | None]:
    """Input text and variables, output text and JSON for one run of ``prompt``."""
    if prompt.slug == "extract-invoice":
        text, vendor, total, currency = rng.choice(_INVOICES)
        output = {"vendor": vendor, "total": total, "currency": currency, "due_date": None}
        return text, {"invoice_text": text}, json.dumps(output), output
    if prompt.slug == "translate-text":
        text, translated = rng.choice(_TRANSLATIONS)
        return text, {"text": text, "target_language": "Spanish"}, translated, None
    text = rng.choice(_TICKETS)
    variables = {"ticket_text": text}
    if prompt.version > 1:
        variables["customer_tier"] = rng.choice(["starter", "pro", "enterprise"])
    output = {
        "summary": text.split(".")[0][:90],
        "sentiment": rng.choice(["negative", "neutral", "negative", "positive"]),
        "priority": rng.choice(["high", "normal", "low"]),
    }
    return text, variables, json.dumps(output), output


@dataclass(frozen=True)
class Router:
    """The routing choices a task can record: a model for each prompt and a key for each provider."""

    models_by_prompt: dict[uuid.UUID, AIModel]
    keys_by_provider: dict[str, list[AIApiKey]]

    @classmethod
    def from_demo(cls, demo: DemoRun) -> "Router":
        models_by_prompt = {
            prompt.pk: prompt.preferred_model or demo.default_model(Provider.OPENAI) for prompt in demo.prompts.values()
        }
        keys: dict[str, list[AIApiKey]] = {}
        for key in sorted(demo.api_keys.values(), key=lambda k: k.priority):
            keys.setdefault(key.provider, []).append(key)
        return cls(models_by_prompt=models_by_prompt, keys_by_provider=keys)

    def key_for(self, rng: random.Random, model: AIModel) -> AIApiKey:
        keys = self.keys_by_provider[model.provider]
        return keys[0] if len(keys) == 1 or rng.random() < 0.85 else rng.choice(keys[1:])


def task_row(
    *,
    rng: random.Random,
    router: Router,
    pk: uuid.UUID,
    organization_id: uuid.UUID,
    user_id: uuid.UUID | None,
    license_id: uuid.UUID | None,
    prompt: Prompt,
    status: str,
    created_at: datetime,
    batch_id: uuid.UUID | None = None,
    batch_index: int | None = None,
) -> ProcessedTask:
    """One processed task; tokens and cost only for work that ran (``tokens_total`` is computed by the DB)."""
    model = router.models_by_prompt[prompt.pk]
    routed = status not in (ProcessedTask.Status.PENDING, ProcessedTask.Status.CANCELLED)
    key = router.key_for(rng, model) if routed else None
    input_text, variables, output_text, output_json = _task_io(rng, prompt)
    task = ProcessedTask(
        id=pk,
        organization_id=organization_id,
        user_id=user_id,
        license_id=license_id,
        batch_id=batch_id,
        batch_index=batch_index,
        model=model,
        api_key=key,
        prompt=prompt,
        input_text=input_text,
        input_variables=variables,
        status=status,
        created_at=created_at,
    )
    if status == ProcessedTask.Status.COMPLETED:
        task.tokens_input = rng.randint(250, 3_500)
        task.tokens_cached = task.tokens_input // 2 if rng.random() < 0.25 else 0
        task.tokens_output = rng.randint(60, 900)
        task.cost_usd = usage_cost(
            model=model,
            usage=Usage(
                tokens_input=task.tokens_input, tokens_output=task.tokens_output, tokens_cached=task.tokens_cached
            ),
        )
        task.execution_time_ms = rng.randint(450, 9_500)
        task.attempts = 1 if rng.random() < 0.9 else 2
        task.output_text = output_text
        task.output_json = output_json
        task.completed_at = created_at + timedelta(milliseconds=task.execution_time_ms)
    elif status == ProcessedTask.Status.FAILED:
        code, message = rng.choice(
            [
                ("provider_rate_limited", "All keys of the provider are rate limited; retries exhausted."),
                ("provider_timeout", "The provider did not answer within 60 s."),
                ("invalid_output", "The model's answer is not valid JSON."),
            ]
        )
        task.error_code = code
        task.error_message = message
        task.attempts = 3
        task.execution_time_ms = rng.randint(2_000, 60_000)
        task.completed_at = created_at + timedelta(milliseconds=task.execution_time_ms)
    elif status == ProcessedTask.Status.RUNNING:
        task.attempts = 1
    return task


# key, org, name, prompt slug, status, total, completed, failed, running, days ago
_BATCHES = (
    ("demo-invoices", DEMO_ORG_SLUG, "Q1 supplier invoices", "extract-invoice", "partially_failed", 24, 22, 2, 0, 12),
    ("demo-triage", DEMO_ORG_SLUG, "Support backlog triage", "summarize-ticket", "running", 40, 15, 1, 1, 0),
    ("demo-translate", DEMO_ORG_SLUG, "Catalogue translation (ES)", "translate-text", "pending", 12, 0, 0, 0, 0),
    ("demo-export", DEMO_ORG_SLUG, "Old ticket export", "summarize-ticket", "cancelled", 30, 5, 0, 0, 6),
    ("acme-reports", SECOND_ORG_SLUG, "Maintenance reports", "summarize-ticket", "completed", 10, 10, 0, 0, 3),
)
_STANDALONE_TASKS = {DEMO_ORG_SLUG: 160, SECOND_ORG_SLUG: 60}
PROMPT_SLUGS = ("summarize-ticket", "extract-invoice", "translate-text")


def _batch_task_statuses(*, total: int, completed: int, failed: int, running: int, batch_status: str) -> list[str]:
    rest = ProcessedTask.Status.CANCELLED if batch_status == "cancelled" else ProcessedTask.Status.PENDING
    statuses = [ProcessedTask.Status.COMPLETED] * completed + [ProcessedTask.Status.FAILED] * failed
    statuses += [ProcessedTask.Status.RUNNING] * running
    return statuses + [rest] * (total - len(statuses))


def seed_operations(demo: DemoRun) -> None:
    router = Router.from_demo(demo)
    rng = random.Random("operations")
    for key, org_slug, name, prompt_slug, status, total, completed, failed, running, days_ago in _BATCHES:
        prompt = demo.active_prompt(prompt_slug)
        created = demo.now - timedelta(days=days_ago, hours=2)
        started = created + timedelta(minutes=1) if status != "pending" else None
        finished = started + timedelta(minutes=total) if status in ("completed", "partially_failed") else None
        batch, _ = TaskBatch.objects.get_or_create(
            pk=demo_uuid("batch", key),
            defaults={
                "organization": demo.orgs[org_slug],
                "user": demo.person(org_slug, "admin"),
                "license": demo.licenses[(org_slug, "primary")],
                "prompt": prompt,
                "model": router.models_by_prompt[prompt.pk],
                "name": name,
                "status": status,
                "total_tasks": total,
                "completed_tasks": completed,
                "failed_tasks": failed,
                "started_at": started,
                "finished_at": finished,
                "cancelled_at": created + timedelta(minutes=9) if status == "cancelled" else None,
                "created_at": created,
            },
        )
        statuses = _batch_task_statuses(
            total=total, completed=completed, failed=failed, running=running, batch_status=status
        )

        def build(
            i: int, pk: uuid.UUID, batch=batch, statuses=statuses, prompt=prompt, created=created
        ) -> ProcessedTask:
            return task_row(
                rng=rng,
                router=router,
                pk=pk,
                organization_id=batch.organization_id,
                user_id=batch.user_id,
                license_id=batch.license_id,
                prompt=prompt,
                status=statuses[i],
                created_at=created + timedelta(seconds=i),
                batch_id=batch.pk,
                batch_index=i,
            )

        insert_missing(ProcessedTask, [demo_uuid("task", key, i) for i in range(total)], build)

    for org_slug, count in _STANDALONE_TASKS.items():
        org = demo.orgs[org_slug]
        users = [demo.person(org_slug, role) for role in ("owner", "admin", "member")]
        license_ = demo.licenses[(org_slug, "primary")]

        def build(i: int, pk: uuid.UUID, org=org, users=users, license_=license_) -> ProcessedTask:
            created = moment_in_history(rng, demo.now)
            slug = rng.choice(PROMPT_SLUGS)
            prompt = demo.active_prompt(slug)
            if slug == "summarize-ticket" and created < demo.now - timedelta(days=15):
                prompt = demo.prompts[(slug, 1)]  # the first version was live back then
            status = ProcessedTask.Status.FAILED if rng.random() < 0.06 else ProcessedTask.Status.COMPLETED
            return task_row(
                rng=rng,
                router=router,
                pk=pk,
                organization_id=org.pk,
                user_id=rng.choice(users).pk,
                license_id=license_.pk,
                prompt=prompt,
                status=status,
                created_at=created,
            )

        insert_missing(ProcessedTask, [demo_uuid("task", org_slug, i) for i in range(count)], build)
