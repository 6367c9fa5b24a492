"""The key pool router: which pooled key answers a request, retries, cooldowns and health.

Per attempt a key is chosen among the model's provider's keys that are active, healthy and not
cooling down, by ``priority`` and then least recently used, and only if its per-minute budget
(``rate_limit_rpm``, spent evenly on Redis's clock, which every process shares) has room. A rate-limited, overloaded or
timed-out key cools down (for the provider's ``Retry-After`` when it gives one) and the request
moves to the next key, then to the next model; ``AI_KEY_FAILURES_UNHEALTHY`` consecutive failures
mark a key unhealthy, a rejected key (401/403) is unhealthy at once. A bad request is not retried.
Secrets are decrypted in memory for the call only and never logged or stored in clear.
"""

import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db.models import F
from django.utils import timezone
from rest_framework import status

from aimesh import providers
from aimesh.models import AIApiKey, AIModel
from celaest import crypto
from celaest.aio import sync_step
from celaest.errors import DomainError
from celaest.ratelimit import pace_hit
from celaest.readcache import ReadCache
from celaest.usecounts import use_counted, uses_taken

logger = logging.getLogger(__name__)


class AIUnavailable(DomainError):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    code = "ai_unavailable"
    message = "No AI provider key could answer the request; try again shortly."


class ProviderRejected(DomainError):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    code = "provider_rejected_request"
    message = "The AI provider rejected the request."


@dataclass
class RoutedAnswer:
    model: AIModel
    key: AIApiKey
    attempts: int
    result: providers.ChatResult | providers.EmbeddingsResult | None = None
    stream_state: providers.StreamState | None = None
    stream: AsyncGenerator[str, None] | None = None


#: each provider's active, healthy keys: read by every AI request. Health and cooldown changes
#: retire it (every write to the keys announces itself); use counts and times do not.
_pool = ReadCache("ai-key-pool").watch(AIApiKey, unseen_fields=("usage_count", "last_used_at"))
#: when this process last took each key (newer than the copies' ``last_used_at``)
_taken_at: dict = {}
_NEVER = datetime.min.replace(tzinfo=UTC)


def usable_keys(*, provider: str) -> list[AIApiKey]:
    """The provider's keys that may be tried now, by ``priority`` and then least recently used
    (as this process saw it: its copy starts from the shared ``last_used_at``). Shared by the
    process's threads: read them, don't change them."""
    pool = _pool.get(
        provider, lambda: list(AIApiKey.objects.filter(provider=provider, is_active=True, is_healthy=True))
    )
    now = timezone.now()

    def last_used(key):
        return max(key.last_used_at or _NEVER, _taken_at.get(key.pk, _NEVER))

    usable = [key for key in pool if key.cooldown_until is None or key.cooldown_until <= now]
    return sorted(usable, key=lambda key: (key.priority, last_used(key), key.pk))


def _take(key: AIApiKey) -> float | None:
    """Claim one call on ``key`` if its per-minute budget allows, and mark it used. Returns None
    when claimed, else the seconds until the budget has room again."""
    wait = pace_hit(key=f"ai-key:{key.pk}", per_minute=key.rate_limit_rpm)
    if wait is not None:
        return wait
    # Marked at selection, not on success, so concurrent requests spread over equal keys.
    _taken_at[key.pk] = timezone.now()
    if use_counted(_usage_counter(key.pk)):
        key_usage_flush(key_id=key.pk)
    return None


def _usage_counter(key_id) -> str:
    return f"ai-key-usage:{key_id}"


def key_usage_flush(*, key_id) -> int:
    """Add the uses of a pooled key counted in the shared cache to its ``usage_count`` and
    ``last_used_at`` (a key's first use each minute does it, the periodic job the rest)."""
    pending = uses_taken(_usage_counter(key_id))
    if pending:
        AIApiKey.objects.filter(pk=key_id).update(usage_count=F("usage_count") + pending, last_used_at=timezone.now())
    return pending


def keys_usage_flush() -> int:
    """Write every pooled key's pending uses (the periodic job). Returns the uses written."""
    return sum(key_usage_flush(key_id=key_id) for key_id in AIApiKey.objects.values_list("pk", flat=True))


def _scrub(message: str, secret: str) -> str:
    return message.replace(secret, "[redacted]") if secret else message


def key_succeeded(key: AIApiKey) -> None:
    if key.consecutive_failures:
        AIApiKey.objects.filter(pk=key.pk).update(consecutive_failures=0, last_error="")


def key_failed(key: AIApiKey, error: providers.ProviderError, *, secret: str = "") -> None:
    now = timezone.now()
    note = _scrub(f"{error.kind}" + (f" (HTTP {error.status})" if error.status else "") + f": {error}", secret)[:500]
    if error.kind == providers.BAD_KEY:
        AIApiKey.objects.filter(pk=key.pk).update(
            is_healthy=False, consecutive_failures=F("consecutive_failures") + 1, last_error=note, last_checked_at=now
        )
        logger.warning("AI key %s rejected by the provider; marked unhealthy", key.pk)
        return
    seconds = error.retry_after if error.retry_after is not None else settings.AI_KEY_COOLDOWN_SECONDS
    AIApiKey.objects.filter(pk=key.pk).update(
        consecutive_failures=F("consecutive_failures") + 1,
        cooldown_until=now + timedelta(seconds=max(seconds, 1)),
        last_error=note,
    )
    threshold = settings.AI_KEY_FAILURES_UNHEALTHY
    if AIApiKey.objects.filter(pk=key.pk, is_healthy=True, consecutive_failures__gte=threshold).update(
        is_healthy=False, last_checked_at=now
    ):
        logger.warning("AI key %s failed %s times in a row; marked unhealthy", key.pk, threshold)


@dataclass(frozen=True)
class _Pick:
    model: AIModel
    key: AIApiKey
    secret: str


def _pick(models: list[AIModel], tried: set) -> tuple[_Pick | None, int, float | None]:
    """The next model and key to try (never a pair in ``tried``), its call claimed on the key's
    budget and its secret decrypted; how many keys were claimed finding it; and, when none was
    found because the keys' budgets are spent, the seconds until the first has room again."""
    taken, budget_in = 0, None
    for model in models:
        for key in usable_keys(provider=model.provider):
            if (model.pk, key.pk) in tried:
                continue
            wait = _take(key)
            if wait is not None:
                budget_in = wait if budget_in is None else min(budget_in, wait)
                continue
            taken += 1
            tried.add((model.pk, key.pk))
            try:
                return _Pick(model=model, key=key, secret=crypto.decrypt(key.key_encrypted)), taken, None
            except crypto.DecryptionError:
                # Encrypted under a key no longer configured: out of rotation until re-entered.
                AIApiKey.objects.filter(pk=key.pk).update(is_healthy=False, last_error="cannot decrypt the stored key")
                logger.error("AI key %s cannot be decrypted with the configured keys", key.pk)
    return None, taken, budget_in


@dataclass
class RouteStart:
    """The first model and key of a route, chosen in the caller's own synchronous step (one
    step fewer per request): what ``route_start`` returns and ``route_chat`` takes."""

    tried: set
    pick: _Pick | None
    taken: int
    budget_in: float | None


def route_start(models: list[AIModel]) -> RouteStart:
    tried: set = set()
    return RouteStart(tried, *_pick(models, tried))


#: ``budget_wait(seconds)``: wait for the keys' budget (True), or give up (False)
BudgetWait = Callable[[float], Awaitable[bool]]


async def _route(
    models: list[AIModel],
    call: Callable[[AIModel, AIApiKey, str], Awaitable[RoutedAnswer]],
    budget_wait: BudgetWait | None = None,
    start: RouteStart | None = None,
) -> RoutedAnswer:
    """Try models and keys in order until one answers. Choosing a key and recording a failure are
    short database steps (``celaest.aio.sync_step``); while the provider works, nothing is held. With
    ``budget_wait`` (batches), keys whose per-minute budget is spent are waited for rather than
    failed; without it (a caller waiting on the answer) the request fails at once."""
    attempts = 0
    tried: set = start.tried if start is not None else set()
    last_error: providers.ProviderError | None = None
    while True:
        if start is not None:
            pick, taken, budget_in, start = start.pick, start.taken, start.budget_in, None
        else:
            pick, taken, budget_in = await sync_step(_pick)(models, tried)
        attempts += taken
        if pick is None and budget_in is not None and budget_wait is not None:
            if await budget_wait(budget_in):
                continue
            raise AIUnavailable(
                "Stopped while waiting for the key pool's budget.",
                code="budget_wait_stopped",
                details={"models": [model.model_id for model in models], "attempts": attempts},
            )
        if pick is None:
            break
        try:
            answer = await call(pick.model, pick.key, pick.secret)
        except providers.ProviderError as error:
            if not error.retryable:  # the request's fault, not the key's: no retry, no penalty
                raise ProviderRejected(
                    _scrub(str(error), pick.secret), details={"model": pick.model.model_id}
                ) from None
            await sync_step(key_failed)(pick.key, error, secret=pick.secret)
            last_error = error
            continue
        if pick.key.consecutive_failures:
            await sync_step(key_succeeded)(pick.key)
        answer.attempts = attempts
        return answer
    details = {"models": [model.model_id for model in models], "attempts": attempts}
    if last_error is not None:
        details["last_error"] = last_error.kind
    raise AIUnavailable(details=details)


async def route_chat(
    *,
    models: list[AIModel],
    request_for: Callable[[AIModel], providers.ChatRequest],
    budget_wait: BudgetWait | None = None,
    start: RouteStart | None = None,
) -> RoutedAnswer:
    """Answer on the first model and key that can; raises AIUnavailable or ProviderRejected."""

    async def call(model, key, secret):
        result = await providers.chat(
            provider=model.provider, api_key=secret, base_url=key.base_url, request=request_for(model)
        )
        return RoutedAnswer(model=model, key=key, attempts=0, result=result)

    return await _route(models, call, budget_wait, start)


async def route_chat_stream(
    *,
    models: list[AIModel],
    request_for: Callable[[AIModel], providers.ChatRequest],
    start: RouteStart | None = None,
) -> RoutedAnswer:
    """Like ``route_chat`` but streamed: failover happens until the provider's first event."""

    async def call(model, key, secret):
        state, stream = await providers.chat_stream(
            provider=model.provider, api_key=secret, base_url=key.base_url, request=request_for(model)
        )
        return RoutedAnswer(model=model, key=key, attempts=0, stream_state=state, stream=stream)

    return await _route(models, call, None, start)


async def route_embeddings(
    *, models: list[AIModel], body_for: Callable[[AIModel], dict], timeout: float, start: RouteStart | None = None
) -> RoutedAnswer:
    """Embeddings from the first model and key that can; raises AIUnavailable or ProviderRejected."""

    async def call(model, key, secret):
        result = await providers.embed(
            provider=model.provider, api_key=secret, base_url=key.base_url, body=body_for(model), timeout=timeout
        )
        return RoutedAnswer(model=model, key=key, attempts=0, result=result)

    return await _route(models, call, None, start)


def key_probe(*, key: AIApiKey) -> bool:
    """Try ``key`` with a cheap call; restore it when it works. Returns whether it is healthy."""
    now = timezone.now()
    try:
        secret = crypto.decrypt(key.key_encrypted)
    except crypto.DecryptionError:
        # Encrypted under a key no longer configured: it stays out until re-entered, and the
        # keys probed after it are still probed.
        AIApiKey.objects.filter(pk=key.pk).update(last_checked_at=now, last_error="cannot decrypt the stored key")
        logger.error("AI key %s cannot be decrypted with the configured keys", key.pk)
        return False
    try:
        providers.run_sync(providers.probe, provider=key.provider, api_key=secret, base_url=key.base_url)
    except providers.ProviderError as error:
        note = _scrub(f"probe {error.kind}: {error}", secret)[:500]
        AIApiKey.objects.filter(pk=key.pk).update(last_checked_at=now, last_error=note)
        return False
    AIApiKey.objects.filter(pk=key.pk).update(**_RESTORED, last_checked_at=now)
    return True


#: a key back in rotation: no failures counted, no cooldown, no error shown
_RESTORED = {"is_healthy": True, "consecutive_failures": 0, "cooldown_until": None, "last_error": ""}


def keys_restore(*, keys) -> int:
    """Put ``keys`` (a queryset) back in rotation, as a probe that worked does (staff's choice)."""
    return keys.update(**_RESTORED, updated_at=timezone.now())


def keys_take_out(*, keys) -> int:
    """Take ``keys`` out of rotation until a probe or staff restore them."""
    return keys.update(is_healthy=False, updated_at=timezone.now())


def keys_probe_unhealthy() -> dict:
    """Probe every active unhealthy key (the beat job and ``check_ai_keys``)."""
    restored, still_failing = [], []
    for key in AIApiKey.objects.filter(is_active=True, is_healthy=False).order_by("pk"):
        (restored if key_probe(key=key) else still_failing).append(key.pk)
    return {"restored": restored, "still_failing": still_failing}
