"""Running AI work: tasks (sync or queued), batches of them, and their metering.

A task is counted against the organization's license before any provider is called
(``licensing.usage``), runs through the key pool router (``aimesh.routing``), and is recorded in
``processed_tasks`` with its tokens, Decimal cost and time, in the same transaction that adds the
tokens to the license's period and emits ``task.completed``/``task.failed``. Queued tasks are
claimed by a conditional update, so a redelivered Celery message never runs or counts one twice.
"""

import asyncio
import time
from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from aimesh import providers
from aimesh.models import AIModel, Prompt
from aimesh.routing import AIUnavailable, ProviderRejected, RoutedAnswer, RouteStart, route_chat, route_start
from aimesh.services import (
    RenderedPrompt,
    estimate_tokens,
    model_by_name,
    models_for,
    prompt_get,
    prompt_json_mode,
    prompt_render,
)
from audit.services import audit_record
from celaest.aio import sync_step
from celaest.celery import app as celery_app
from celaest.errors import Conflict, DomainError, InvalidInput, NotFound
from licensing.selectors import license_effective_limits
from licensing.usage import license_usage_commit, license_usage_release, license_usage_reserve
from operations.ai_licenses import paying_license
from operations.models import ProcessedTask, TaskBatch
from settings_app.events import emit_event

COST_QUANTUM = Decimal("0.00000001")
_FINISHED = (ProcessedTask.Status.COMPLETED, ProcessedTask.Status.FAILED, ProcessedTask.Status.CANCELLED)


def _stale_before():
    """Claims made before this moment are stale: their worker is gone (past the task time limit)."""
    return timezone.now() - timedelta(seconds=settings.AI_TASK_STALE_SECONDS)


def usage_cost(*, model: AIModel, usage: providers.Usage) -> Decimal:
    """USD cost of ``usage`` on ``model``: cached input at the cached price, the rest of the input
    at the input price (a cached token is never charged twice), output at the output price."""
    cached = min(usage.tokens_cached, usage.tokens_input)
    cost = (
        Decimal(usage.tokens_input - cached) * model.cost_per_1k_input
        + Decimal(cached) * model.cost_per_1k_cached_input
        + Decimal(usage.tokens_output) * model.cost_per_1k_output
    ) / Decimal(1000)
    return cost.quantize(COST_QUANTUM, rounding=ROUND_HALF_UP)


# -- preparing ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PreparedTask:
    prompt: Prompt
    rendered: RenderedPrompt
    models: list[AIModel]
    json_mode: bool


def task_prepare(
    *,
    prompt_slug: str,
    prompt_version: int | None = None,
    variables: dict | None = None,
    input_text: str = "",
    model_name: str | None = None,
    first_model: AIModel | None = None,
) -> PreparedTask:
    """Validate a task's inputs (400 on a bad one) and choose its models, before anything runs."""
    prompt = prompt_get(slug=prompt_slug, version=prompt_version)
    rendered = prompt_render(prompt=prompt, variables=variables, input_text=input_text)
    if not rendered.user.strip():
        raise InvalidInput("The task has no input.", code="empty_input")
    requested = first_model or (model_by_name(name=model_name) if model_name else None)
    json_mode = prompt_json_mode(prompt)
    models = models_for(
        prompt=prompt, requested=requested, json_mode=json_mode, estimated_tokens=rendered.estimated_tokens
    )
    return PreparedTask(prompt=prompt, rendered=rendered, models=models, json_mode=json_mode)


def _chat_request(prepared: PreparedTask, model: AIModel) -> providers.ChatRequest:
    return providers.ChatRequest(
        model_id=model.model_id,
        messages=[{"role": "user", "content": prepared.rendered.user}],
        system=prepared.rendered.system,
        max_tokens=min(prepared.prompt.max_output_tokens, model.max_tokens_output),
        temperature=float(prepared.prompt.temperature),
        json_mode=prepared.json_mode,
        timeout=settings.AI_REQUEST_TIMEOUT_SECONDS,
    )


# -- recording ---------------------------------------------------------------------------------------


def task_event_payload(task: ProcessedTask) -> dict:
    return {
        "task_id": str(task.pk),
        "status": task.status,
        "batch_id": str(task.batch_id) if task.batch_id else None,
        "model": task.model.model_id if task.model_id and task.model else None,
        "tokens_input": task.tokens_input,
        "tokens_output": task.tokens_output,
        "cost_usd": str(task.cost_usd),
        "error_code": task.error_code or None,
    }


def _running_task_settle(task: ProcessedTask, fields: dict) -> bool:
    """Write ``fields`` to ``task`` if it is still running, and add its tokens and cost to the
    license's period (in the caller's transaction). False, the task refreshed, when it was not."""
    if not ProcessedTask.objects.filter(pk=task.pk, status=ProcessedTask.Status.RUNNING).update(**fields):
        task.refresh_from_db()
        return False
    for name, value in fields.items():
        setattr(task, name, value)
    if task.license_id and (task.tokens_input or task.tokens_output):
        task_usage_commit(task)
    return True


def task_usage_commit(task: ProcessedTask, record: dict | None = None) -> None:
    """Add ``task``'s tokens and cost to its license's period (``record``: see
    ``operations.call_records``)."""
    license_usage_commit(
        license=task.license,
        tokens_input=task.tokens_input,
        tokens_output=task.tokens_output,
        tokens_cached=task.tokens_cached,
        cost=task.cost_usd,
        period_start=task.created_at.date(),
        record=record,
    )


def answer_fields(
    *, model: AIModel, key, usage: providers.Usage, text: str, output_json, attempts: int, started
) -> dict:
    """What an answered task's row becomes: tokens, cost, time."""
    cost = usage_cost(model=model, usage=usage)
    now = timezone.now()
    return {
        "status": ProcessedTask.Status.COMPLETED,
        "model": model,
        "api_key": key,
        "output_text": text,
        "output_json": output_json,
        "tokens_input": usage.tokens_input,
        "tokens_output": usage.tokens_output,
        "tokens_cached": min(usage.tokens_cached, usage.tokens_input),
        "cost_usd": cost,
        "execution_time_ms": int((time.monotonic() - started) * 1000),
        "attempts": attempts,
        "completed_at": now,
        "error_code": "",
        "error_message": "",
    }


def task_record_answer(*, task: ProcessedTask, started, **answer) -> ProcessedTask:
    """Record an answered task (``answer``: ``answer_fields``' arguments): tokens, cost, time; the
    license's period usage; the event."""
    fields = answer_fields(started=started, **answer)
    with transaction.atomic():
        if not _running_task_settle(task, fields):
            return task  # cancelled or finished elsewhere meanwhile: nothing more to count
        _batch_progress(task)
        emit_event("task.completed", organization=task.organization_id, payload=task_event_payload(task))
    return task


def failure_fields(*, error: DomainError, started, attempts: int | None = None) -> dict:
    """What a failed task's row becomes."""
    fields = {
        "status": ProcessedTask.Status.FAILED,
        "error_code": error.code,
        "error_message": error.message[:2000],
        "execution_time_ms": int((time.monotonic() - started) * 1000),
        "completed_at": timezone.now(),
    }
    if attempts is not None:
        fields["attempts"] = attempts
    return fields


def task_record_failure(
    *, task: ProcessedTask, error: DomainError, started, release_license: bool, attempts: int | None = None
) -> ProcessedTask:
    fields = failure_fields(error=error, started=started, attempts=attempts)
    with transaction.atomic():
        claimable = Q(status__in=(ProcessedTask.Status.RUNNING, ProcessedTask.Status.PENDING))
        if not ProcessedTask.objects.filter(claimable, pk=task.pk).update(**fields):
            task.refresh_from_db()
            return task
        for name, value in fields.items():
            setattr(task, name, value)
        if release_license and task.license_id:
            license_usage_release(license=task.license, task_id=task.pk, period_start=task.created_at.date())
        _batch_progress(task)
        emit_event("task.failed", organization=task.organization_id, payload=task_event_payload(task))
    return task


def disconnected_fields(*, task: ProcessedTask, state: providers.StreamState) -> dict:
    """What a streamed task whose client went away keeps: the text produced so far and what the
    provider consumed for it (the provider worked; its usage normally comes with the last event,
    so the output is estimated from the text)."""
    usage = providers.Usage(
        tokens_input=state.usage.tokens_input,
        tokens_output=max(state.usage.tokens_output, estimate_tokens(state.text) if state.text else 0),
        tokens_cached=state.usage.tokens_cached,
    )
    cost = usage_cost(model=task.model, usage=usage) if task.model_id else Decimal(0)
    return {
        "output_text": state.text,
        "tokens_input": usage.tokens_input,
        "tokens_output": usage.tokens_output,
        "tokens_cached": min(usage.tokens_cached, usage.tokens_input),
        "cost_usd": cost,
    }


def task_record_disconnected(
    *, task: ProcessedTask, state: providers.StreamState, error: DomainError, started
) -> ProcessedTask:
    """Close a streamed task whose client went away: failed with ``error``, keeping what
    ``disconnected_fields`` keeps."""
    fields = disconnected_fields(task=task, state=state)
    with transaction.atomic():
        if not _running_task_settle(task, fields):
            return task
        return task_record_failure(task=task, error=error, started=started, release_license=False)


def task_heartbeat(*, task: ProcessedTask) -> None:
    """Renew a running task's claim (``started_at``) while a web request is still working on it,
    so the beat job does not close a long answer stream as ``worker_lost`` halfway through."""
    ProcessedTask.objects.filter(pk=task.pk, status=ProcessedTask.Status.RUNNING).update(started_at=timezone.now())


async def _perform(
    task: ProcessedTask, prepared: PreparedTask, started, *, budget_wait=None, start: RouteStart | None = None
) -> ProcessedTask:
    """Route the task's call and record its outcome; nothing is held while the provider works."""
    try:
        answer: RoutedAnswer = await route_chat(
            models=prepared.models,
            request_for=lambda m: _chat_request(prepared, m),
            budget_wait=budget_wait,
            start=start,
        )
    except (AIUnavailable, ProviderRejected) as error:
        attempts = (error.details or {}).get("attempts")
        return await sync_step(task_record_failure)(
            task=task, error=error, started=started, release_license=True, attempts=attempts
        )
    return await sync_step(task_record_routed)(task=task, answer=answer, started=started)


def routed_answer(answer: RoutedAnswer) -> dict:
    """The answer the router got (not streamed), as ``answer_fields``' arguments."""
    result = answer.result
    return {
        "model": answer.model,
        "key": answer.key,
        "usage": result.usage,
        "text": result.text,
        "output_json": result.output_json,
        "attempts": answer.attempts,
    }


def task_record_routed(*, task: ProcessedTask, answer: RoutedAnswer, started) -> ProcessedTask:
    """Record the answer the router got (not streamed)."""
    return task_record_answer(task=task, started=started, **routed_answer(answer))


# -- tasks -------------------------------------------------------------------------------------------


# The Celery jobs are looked up by name: ``operations.tasks`` imports these services, and
# ``OperationsConfig.ready()`` imports the tasks, so the names are registered in every process.
# The registered task sends its message as before (its queue from CELERY_TASK_ROUTES, its options).


def _run_task_send(task_id: str) -> None:
    celery_app.tasks["operations.run_task"].delay(task_id)


def _run_batch_chunk_send(batch_id: str, start: int, stop: int) -> None:
    celery_app.tasks["operations.run_batch_chunk"].delay(batch_id, start, stop)


@dataclass(frozen=True)
class StartedTask:
    task: ProcessedTask
    prepared: PreparedTask
    started: float
    #: the first key, chosen in the same step
    route: RouteStart


def task_start(
    *,
    user,
    api_key=None,
    prompt_slug: str,
    prompt_version: int | None = None,
    variables: dict | None = None,
    input_text: str = "",
    model_name: str | None = None,
) -> StartedTask:
    """Begin one task to run now: validate, count it against the license (402/429 before any
    provider call, nothing recorded) and record it running. ``task_run`` finishes it."""
    started = time.monotonic()
    prepared, new_task = _task_start(
        user=user,
        api_key=api_key,
        prompt_slug=prompt_slug,
        prompt_version=prompt_version,
        variables=variables,
        input_text=input_text,
        model_name=model_name,
    )
    with transaction.atomic():
        new_task.status, new_task.started_at = ProcessedTask.Status.RUNNING, timezone.now()
        new_task.save()
        license_usage_reserve(license=new_task.license, task_id=new_task.pk)
    return StartedTask(task=new_task, prepared=prepared, started=started, route=route_start(prepared.models))


async def task_run(*, begun: StartedTask) -> ProcessedTask:
    """Call the provider for a task ``task_start`` began, and record the outcome."""
    return await _perform(begun.task, begun.prepared, begun.started, start=begun.route)


def task_enqueue(
    *,
    user,
    api_key=None,
    prompt_slug: str,
    prompt_version: int | None = None,
    variables: dict | None = None,
    input_text: str = "",
    model_name: str | None = None,
) -> ProcessedTask:
    """Queue one task on Celery (validated now; counted when a worker claims it)."""
    _prepared, new_task = _task_start(
        user=user,
        api_key=api_key,
        prompt_slug=prompt_slug,
        prompt_version=prompt_version,
        variables=variables,
        input_text=input_text,
        model_name=model_name,
    )
    with transaction.atomic():
        new_task.queued_at = timezone.now()
        new_task.save()
        # robust: a broker that refuses the message must not turn the recorded task into a 500;
        # the recover-stale-ai-tasks beat job sends it later (AI_TASK_REQUEUE_SECONDS).
        transaction.on_commit(lambda: _run_task_send(str(new_task.pk)), robust=True)
    return new_task


def _task_start(*, user, api_key, variables, input_text, **choice) -> tuple[PreparedTask, ProcessedTask]:
    """Validate a task and find the license that pays for it (``paying_license``: the API key's,
    the organization's designated one, else its live paid one; 402 without one); the task's row
    is returned unsaved."""
    prepared = task_prepare(variables=variables, input_text=input_text, **choice)
    license = paying_license(user=user, api_key=api_key)
    row = ProcessedTask(
        organization_id=user.organization_id,
        user=user,
        license=license,
        prompt=prepared.prompt,
        model=prepared.models[0],
        input_text=input_text,
        input_variables=variables or {},
    )
    return prepared, row


def _claim(task_id, started) -> ProcessedTask | None:
    """Claim a queued task for this worker. Returns None when it is finished, another worker holds
    it or its batch was cancelled. A claim older than the task time limit is stale (its worker
    died) and may be taken over; the license was counted by the first claim only, so every
    claimed task of a license holds exactly one reserved request. A first claim the license
    refuses is returned already failed."""
    stale_before = _stale_before()
    with transaction.atomic():
        task = (
            ProcessedTask.objects.select_for_update(of=("self",))
            .select_related("license", "prompt")
            .filter(pk=task_id)
            .first()
        )
        if task is None or task.status in _FINISHED:
            return None
        if task.status == ProcessedTask.Status.RUNNING and task.started_at and task.started_at > stale_before:
            return None
        if task.batch_id and _batch_cancelled(task.batch_id):
            return None
        first = task.attempts == 0
        task.status = ProcessedTask.Status.RUNNING
        task.started_at = timezone.now()
        task.attempts = F("attempts") + 1
        task.save(update_fields=["status", "started_at", "attempts"])
        task.refresh_from_db(fields=["attempts"])
        if first and task.license_id:
            # Counted, or refused and recorded, in the claim's own transaction: a worker dying
            # right after the claim cannot leave a claimed task that was never counted (a later
            # takeover would run it for free).
            try:
                with transaction.atomic():
                    license_usage_reserve(license=task.license, task_id=task.pk)
            except DomainError as refusal:
                return task_record_failure(task=task, error=refusal, started=started, release_license=False)
        return task


def _claim_prepared(task_id, started) -> tuple[ProcessedTask | None, PreparedTask | None]:
    """Claim a queued task and prepare its call; (task, None) when it is not to run here."""
    task = _claim(task_id, started)
    if task is None or task.status != ProcessedTask.Status.RUNNING:
        return task, None
    try:
        if task.prompt is None:  # deleted after the task was queued (the task keeps SET_NULL)
            raise NotFound("The task's prompt was deleted before it ran.", code="prompt_not_found")
        prepared = task_prepare(
            prompt_slug=task.prompt.slug,
            prompt_version=task.prompt.version,
            variables=task.input_variables or None,
            input_text=task.input_text,
            first_model=task.model,
        )
    except DomainError as error:
        return task_record_failure(task=task, error=error, started=started, release_license=True), None
    return task, prepared


async def _execute(task_id, *, budget_wait=None) -> ProcessedTask | None:
    started = time.monotonic()
    task, prepared = await sync_step(_claim_prepared)(task_id, started)
    if prepared is None:
        return task
    return await _perform(task, prepared, started, budget_wait=budget_wait)


def task_execute(*, task_id) -> ProcessedTask | None:
    """Run a queued task (the Celery job). Idempotent: a finished or held task is left alone."""
    return providers.run_sync(_execute, task_id)


# -- batches -----------------------------------------------------------------------------------------


def _batch_progress(task: ProcessedTask) -> None:
    """Count a finished batch task and close the batch when its last task finishes (inside the
    transaction that records the task, so a count can neither be lost nor doubled)."""
    if not task.batch_id:
        return
    counter = "completed_tasks" if task.status == ProcessedTask.Status.COMPLETED else "failed_tasks"
    TaskBatch.objects.filter(pk=task.batch_id).update(**{counter: F(counter) + 1}, updated_at=timezone.now())
    batch = TaskBatch.objects.select_for_update().get(pk=task.batch_id)
    if batch.status != TaskBatch.Status.RUNNING or batch.completed_tasks + batch.failed_tasks < batch.total_tasks:
        return
    if batch.failed_tasks == 0:
        batch.status, event = TaskBatch.Status.COMPLETED, "batch.completed"
    elif batch.completed_tasks == 0:
        batch.status, event = TaskBatch.Status.FAILED, "batch.failed"
    else:
        batch.status, event = TaskBatch.Status.PARTIALLY_FAILED, "batch.completed"
    batch.finished_at = timezone.now()
    batch.save(update_fields=["status", "finished_at", "updated_at"])
    emit_event(event, organization=batch.organization, payload=_batch_payload(batch))


def _batch_payload(batch: TaskBatch) -> dict:
    return {
        "batch_id": str(batch.pk),
        "status": batch.status,
        "total_tasks": batch.total_tasks,
        "completed_tasks": batch.completed_tasks,
        "failed_tasks": batch.failed_tasks,
    }


def _batch_item(item) -> tuple[dict, str]:
    if isinstance(item, str):
        return {}, item
    if isinstance(item, dict):
        return item, ""
    raise InvalidInput("Each input is a text or an object of variables.", code="invalid_inputs")


def batch_create(
    *, user, prompt_slug: str, prompt_version: int | None, inputs: list, name: str = "", api_key=None
) -> TaskBatch:
    """A batch of tasks for ``inputs`` (texts or variable objects), up to the plan's
    ``max_batch_size``, queued on Celery in chunks once committed."""
    if not isinstance(inputs, list) or not inputs:
        raise InvalidInput("A batch needs at least one input.", code="empty_batch")
    license = paying_license(user=user, api_key=api_key)
    limit = license_effective_limits(license=license).get("max_batch_size")
    if limit is not None and len(inputs) > limit:
        raise InvalidInput(
            f"A batch may hold at most {limit} inputs on this plan.",
            code="batch_too_large",
            details={"max_batch_size": limit, "inputs": len(inputs)},
        )
    prepared = []
    for index, item in enumerate(inputs):
        variables, text = _batch_item(item)
        try:
            prepared.append((variables, text, task_prepare(
                prompt_slug=prompt_slug, prompt_version=prompt_version, variables=variables or None, input_text=text
            )))  # fmt: skip
        except InvalidInput as error:
            raise InvalidInput(
                f"Input {index}: {error.message}", code=error.code, details={"index": index, **error.details}
            ) from None
    prompt = prepared[0][2].prompt
    queued_at = timezone.now()
    with transaction.atomic():
        batch = TaskBatch.objects.create(
            organization_id=user.organization_id,
            user=user,
            license=license,
            prompt=prompt,
            model=prepared[0][2].models[0],
            name=name,
            total_tasks=len(inputs),
        )
        ProcessedTask.objects.bulk_create(
            ProcessedTask(
                organization_id=user.organization_id,
                user=user,
                license=license,
                batch=batch,
                batch_index=index,
                prompt=prompt,
                model=item[2].models[0],
                input_text=item[1],
                input_variables=item[0],
                queued_at=queued_at,
            )
            for index, item in enumerate(prepared)
        )
        audit_record(action="batch.created", resource=batch, user=user)
        size = settings.AI_BATCH_CHUNK_SIZE
        chunks = [(start, min(start + size, len(inputs))) for start in range(0, len(inputs), size)]
        transaction.on_commit(lambda: [_run_batch_chunk_send(str(batch.pk), a, b) for a, b in chunks], robust=True)
    return batch


def _chunk_begin(batch_id, start: int, stop: int) -> list:
    """Mark the batch running and list the chunk's tasks still to run."""
    now = timezone.now()
    TaskBatch.objects.filter(pk=batch_id, status=TaskBatch.Status.PENDING).update(
        status=TaskBatch.Status.RUNNING, started_at=now, updated_at=now
    )
    return list(
        ProcessedTask.objects.filter(batch_id=batch_id, batch_index__gte=start, batch_index__lt=stop)
        .exclude(status__in=_FINISHED)
        .order_by("batch_index")
        .values_list("pk", flat=True)
    )


def _batch_cancelled(batch_id) -> bool:
    return TaskBatch.objects.filter(pk=batch_id, status=TaskBatch.Status.CANCELLED).exists()


#: how often a running chunk looks whether its batch was cancelled
BATCH_CANCEL_POLL_SECONDS = 0.5


async def _run_chunk(batch_id, start: int, stop: int) -> int:
    """The chunk's tasks at once on this event loop, at most ``AI_BATCH_CONCURRENCY`` in flight.
    When the pool's keys have no budget left (``rate_limit_rpm``, spent evenly and shared by
    every process), a task waits for it instead of failing. A cancelled batch starts no more tasks,
    and tasks waiting for budget give their reserved request back, within a poll."""
    task_ids = await sync_step(_chunk_begin)(batch_id, start, stop)
    slots = asyncio.Semaphore(max(settings.AI_BATCH_CONCURRENCY, 1))
    cancelled = asyncio.Event()

    async def watch():
        while not cancelled.is_set():
            await asyncio.sleep(BATCH_CANCEL_POLL_SECONDS)
            if await sync_step(_batch_cancelled)(batch_id):
                cancelled.set()

    async def budget_wait(seconds: float) -> bool:
        """Wait ``seconds`` for the pool's budget; False once the batch is cancelled."""
        try:
            await asyncio.wait_for(cancelled.wait(), timeout=seconds)
        except TimeoutError:
            return True
        return False

    async def one(task_id) -> bool:
        async with slots:
            if cancelled.is_set():
                return False
            return await _execute(task_id, budget_wait=budget_wait) is not None

    watcher = asyncio.create_task(watch())
    try:
        ran = await asyncio.gather(*(one(task_id) for task_id in task_ids))
    finally:
        watcher.cancel()
    return sum(ran)


def batch_run_chunk(*, batch_id, start: int, stop: int) -> int:
    """Run the batch's tasks with ``start <= batch_index < stop`` (the Celery job). Returns how
    many ran here; tasks already finished or held by another worker are skipped."""
    return providers.run_sync(_run_chunk, batch_id, start, stop)


@transaction.atomic
def batch_cancel(*, batch: TaskBatch, user=None) -> TaskBatch:
    """Stop a batch: its queued tasks are cancelled; tasks already running finish and count."""
    now = timezone.now()
    open_statuses = (TaskBatch.Status.PENDING, TaskBatch.Status.RUNNING)
    if not TaskBatch.objects.filter(pk=batch.pk, status__in=open_statuses).update(
        status=TaskBatch.Status.CANCELLED, cancelled_at=now, finished_at=now, updated_at=now
    ):
        batch.refresh_from_db()
        raise Conflict(f"The batch is already {batch.status}.", code="batch_not_cancellable")
    ProcessedTask.objects.filter(batch=batch, status=ProcessedTask.Status.PENDING).update(
        status=ProcessedTask.Status.CANCELLED, completed_at=now
    )
    batch.refresh_from_db()
    audit_record(action="batch.cancelled", resource=batch, user=user)
    emit_event("batch.cancelled", organization=batch.organization, payload=_batch_payload(batch))
    return batch


# -- tasks whose worker died -------------------------------------------------------------------------

#: a task claimed this often without finishing is failed, not run again (it kills its worker)
_CLAIMS_BEFORE_GIVING_UP = 3
_RECOVER_BATCH = 300


def tasks_recover_stale(*, limit: int = _RECOVER_BATCH) -> dict:
    """The beat job: revisit the tasks left RUNNING past the stale time, oldest first, then send
    again the messages of tasks queued too long ago (``tasks_requeue_waiting``).

    When only a Celery child process dies (the OOM killer), its message is requeued at once; the
    redelivery finds the claim still fresh, skips the task and is acknowledged, so nothing else
    ever comes back to it. Queued tasks are enqueued again: ``_claim`` takes the stale claim over
    and the license, counted by the first claim, is not counted again (a duplicate message finds
    the new claim fresh and does nothing). Tasks that must not run again are failed with
    ``worker_lost`` and their reserved request given back: those of a cancelled batch, those run
    in a web request (no worker claimed them: the request is gone), and those already claimed
    ``_CLAIMS_BEFORE_GIVING_UP`` times."""
    stale_before = _stale_before()
    stale = (
        ProcessedTask.objects.filter(status=ProcessedTask.Status.RUNNING, started_at__lt=stale_before)
        .order_by("started_at")
        .values_list("pk", "attempts", "batch__status")[:limit]
    )
    resumed, closed = [], 0
    for task_id, claims, batch_status in stale:
        if 0 < claims < _CLAIMS_BEFORE_GIVING_UP and batch_status != TaskBatch.Status.CANCELLED:
            resumed.append(str(task_id))
        elif _task_close_lost(task_id=task_id, stale_before=stale_before):
            closed += 1
    if resumed:
        transaction.on_commit(lambda: [_run_task_send(task_id) for task_id in resumed])
    return {"resumed": len(resumed), "closed": closed, "requeued": tasks_requeue_waiting(limit=limit)}


def tasks_requeue_waiting(*, limit: int = _RECOVER_BATCH) -> int:
    """Send again the message of each task still queued ``AI_TASK_REQUEUE_SECONDS`` after its
    message was sent, oldest first. A message the broker lost (Redis restarted without its data)
    or never took (it was down when the task was committed) would leave the task, and its batch,
    queued for ever. A task merely waiting in a long queue gets a second message, which finds it
    claimed or finished and does nothing; ``queued_at`` moves on, so that happens once a period.
    Batch tasks are sent as their chunk, which also starts a batch whose every message was lost.
    Returns how many tasks were sent again."""
    now = timezone.now()
    waiting = ProcessedTask.objects.filter(
        status=ProcessedTask.Status.PENDING,
        queued_at__lt=now - timedelta(seconds=settings.AI_TASK_REQUEUE_SECONDS),
    )
    found = list(waiting.order_by("queued_at").values_list("pk", "batch_id", "batch_index")[:limit])
    if not found:
        return 0
    waiting.filter(pk__in=[task_id for task_id, _batch, _index in found]).update(queued_at=now)
    size = settings.AI_BATCH_CHUNK_SIZE
    tasks = [str(task_id) for task_id, batch_id, _index in found if batch_id is None]
    chunks = sorted({(str(batch_id), index // size * size) for _task, batch_id, index in found if batch_id})

    def send():
        for task_id in tasks:
            _run_task_send(task_id)
        for batch_id, start in chunks:
            _run_batch_chunk_send(batch_id, start, start + size)

    transaction.on_commit(send, robust=True)
    return len(found)


def _task_close_lost(*, task_id, stale_before) -> bool:
    """Fail a task whose worker died, unless it was claimed again or finished since the scan."""
    with transaction.atomic():
        task = (
            ProcessedTask.objects.select_for_update(of=("self",))
            .select_related("license")
            .filter(pk=task_id, status=ProcessedTask.Status.RUNNING, started_at__lt=stale_before)
            .first()
        )
        if task is None:
            return False
        lost = DomainError("The process running the task stopped before it finished.", code="worker_lost")
        task_record_failure(task=task, error=lost, started=time.monotonic(), release_license=True)
    return True
