"""The OpenAI-compatible gateway: ``POST /v1/chat/completions`` (with ``stream``: tools, images,
JSON schemas), ``POST /v1/embeddings`` and ``GET /v1/models`` at the root, so any OpenAI client
can use CELAEST as its base URL (``messages.py`` serves Anthropic's Messages API on the same path).

Callers authenticate with a CELAEST user API key (``Authorization: Bearer cel_...``). The
``model`` names an active ``ai_models`` row; the request is metered against the organization's
license before any provider call, routed through the key pool like a task, and recorded in
``processed_tasks`` like one, behind the answer (``operations.call_records``).
"""

import asyncio
import dataclasses
import json
import time
import uuid
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.http import StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from aimesh import providers, translate
from aimesh.models import AIModel
from aimesh.routing import (
    AIUnavailable,
    ProviderRejected,
    RoutedAnswer,
    RouteStart,
    route_chat,
    route_chat_stream,
    route_embeddings,
    route_start,
)
from aimesh.services import estimate_tokens, model_by_name, model_fallbacks
from celaest.aio import sync_step
from celaest.api import permissions as perms
from celaest.api.views import AsyncApiView
from celaest.errors import DomainError, InvalidInput, gateway_error_body
from celaest.readcache import generations_read_at_once
from operations.ai_licenses import paying_license
from operations.budgets import (
    BudgetReservation,
    budget_release,
    budget_renew,
    budget_reserve,
    budget_settle,
    budget_worst_case_usd,
    rate_limit_headers,
)
from operations.call_records import call_task_answer, call_task_begin, call_task_disconnected, call_task_failure
from operations.models import ProcessedTask
from operations.services import routed_answer, task_heartbeat
from settings_app.authentication import ApiKeyAuthentication
from settings_app.models import UserApiKey

from .serializers import ChatCompletionRequestSerializer, EmbeddingsRequestSerializer, field_error


class _GatewayView(AsyncApiView):
    authentication_classes = [ApiKeyAuthentication]
    #: long conversations and images sent inline as base64 (OpenAI takes up to 20 MB an image)
    max_request_bytes = 20 * 1024 * 1024
    permission_classes = [IsAuthenticated, perms.RolePermission, perms.ApiKeyScopePermission]
    scope_resource = "tasks"
    read_roles = perms.ALL_ROLES
    write_roles = perms.WRITER_ROLES
    streaming = False

    def _begin(self, request, args, kwargs):
        # The API key, model, license, key pool and webhooks are read from this process's
        # copies: their generations are checked once, in one round trip.
        with generations_read_at_once():
            return super()._begin(request, args, kwargs)

    def handle_exception(self, exc):
        """The project's error shape, in the protocol's (``celaest.errors.gateway_error_body``)."""
        response = super().handle_exception(exc)
        response.data = gateway_error_body(response.data, response.status_code, self.request.path)
        return response

    async def after_handler(self) -> None:
        if not self.streaming:  # a stream releases them when it ends
            await providers.clients_release()


def _models_list() -> list[dict]:
    return [
        {
            "id": model.model_id,
            "object": "model",
            "created": int(model.created_at.timestamp()),
            "owned_by": model.provider,
        }
        for model in AIModel.objects.filter(is_active=True).order_by("model_id")
    ]


class ModelsView(_GatewayView):
    def prepare_get(self, request):
        return _models_list()

    @extend_schema(
        summary="List the models (OpenAI-compatible)", responses={200: OpenApiTypes.OBJECT}, tags=["gateway"]
    )
    async def get(self, request, prepared):
        return Response({"object": "list", "data": prepared})


IMAGE_TOKENS = 1000  # an image counts this many input tokens in the size check (OpenAI: 85-1,105)


def _images(turns: list[dict]) -> int:
    return sum(
        1
        for turn in turns
        if isinstance(turn.get("content"), list)
        for part in turn["content"]
        if part["type"] == "image_url"
    )


def _estimated_tokens(system: str, turns: list[dict], options: dict) -> int:
    """The input's size for the model's limit: its texts, tool calls and definitions, images."""
    texts = [system] + [translate.content_text(turn.get("content")) for turn in turns]
    texts += [call["function"]["arguments"] for turn in turns for call in turn.get("tool_calls") or ()]
    if options.get("tools"):
        texts.append(json.dumps(options["tools"]))
    return sum(estimate_tokens(text) for text in texts if text) + IMAGE_TOKENS * _images(turns)


def _refusal(model: AIModel, data: dict) -> InvalidInput | None:
    """Why the model cannot honour the chat request, or None."""
    options = data["options"]
    needed = {
        "vision": ("messages", _images(data["turns"]) > 0),
        "tools": ("tools", bool(options.get("tools"))),
        "json": ("response_format", (options.get("response_format") or {}).get("type") in providers.JSON_FORMATS),
    }
    for capability, (param, needs) in needed.items():
        if needs and capability not in (model.capabilities or ()):
            return InvalidInput(
                f"The model {model.model_id} does not support {capability}.",
                code="model_capability_missing",
                details={"param": param, "capability": capability, "model": model.model_id},
            )
    refused = translate.unsupported_options(
        anthropic=providers.is_anthropic(model.provider), options={**options, "temperature": data.get("temperature")}
    )
    if refused:
        return InvalidInput(
            f"The model {model.model_id} does not take the parameter {refused[0]!r}.",
            code="unsupported_parameter",
            details={"param": refused[0], "model": model.model_id},
        )
    return None


def _last_user_text(turns: list[dict]) -> str:
    return next(translate.content_text(turn["content"]) for turn in reversed(turns) if turn["role"] == "user")


def _answer_message(text: str, tool_calls: list[dict]) -> dict:
    message = {"role": "assistant", "content": text or (None if tool_calls else "")}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return message


def _usage_body(usage: providers.Usage) -> dict:
    return {
        "prompt_tokens": usage.tokens_input,
        "completion_tokens": usage.tokens_output,
        "total_tokens": usage.tokens_input + usage.tokens_output,
        "prompt_tokens_details": {"cached_tokens": usage.tokens_cached},
    }


def _sse(data) -> bytes:
    return f"data: {data if isinstance(data, str) else json.dumps(data)}\n\n".encode()


@dataclass(frozen=True)
class GatewayCall:
    """A validated call, counted against the license, its task recorded as running."""

    task: ProcessedTask
    #: the model asked for, then its fallbacks that can take the call
    models: list[AIModel]
    #: a chat request, or an embeddings request's body (OpenAI's), for the first model
    request: providers.ChatRequest | dict
    stream: bool
    started: float
    #: the first key, chosen in this step too
    route: RouteStart
    #: the call's worst case reserved against the key's and the license's budgets
    budget: BudgetReservation | None = None
    #: OpenAI's ``x-ratelimit-*`` headers for the answer
    headers: dict = dataclasses.field(default_factory=dict)


def _call_begin(
    request, /, *, models: list[AIModel], input_text: str, variables: dict, tokens: int, max_output: int, **call
) -> GatewayCall:
    """Before any provider call: the license that pays chosen, the call's worst case (``tokens``
    in, ``max_output`` out, on the dearest of ``models``) reserved against the key's and the
    license's budgets, then the license counted with the running task's record (the budget given
    back if that fails), and the first key chosen."""
    user, api_key = request.user, request.auth if isinstance(request.auth, UserApiKey) else None
    license = paying_license(user=user, api_key=api_key)
    budget = None
    task_id = uuid.uuid4()
    if api_key is not None:
        worst = max(
            budget_worst_case_usd(model=model, input_tokens=tokens, max_output_tokens=max_output) for model in models
        )
        budget = budget_reserve(
            api_key=api_key,
            license=license,
            model=models[0].model_id,
            max_cost_usd=worst,
            estimated_tokens=tokens + max_output,
            call_id=task_id,
        )
    now = timezone.now()
    task = ProcessedTask(
        pk=task_id,
        organization_id=user.organization_id,
        user=user,
        license=license,
        model=models[0],
        input_text=input_text,
        input_variables=variables,
        status=ProcessedTask.Status.RUNNING,
        started_at=now,
        created_at=now,
    )
    try:
        month = call_task_begin(task=task)
    except BaseException:
        budget_release(budget)
        raise
    headers = rate_limit_headers(api_key=api_key, license=license, month=month, budget=budget) if api_key else {}
    return GatewayCall(route=route_start(models), task=task, models=models, budget=budget, headers=headers, **call)


def _recorded(record, call: GatewayCall):
    """``record`` (a ``call_task_*`` service) as one step that also replaces the call's budget
    reservation by what the task recorded it spent."""

    def step(**arguments):
        task = record(**arguments)
        tokens = (task.tokens_input or 0) + (task.tokens_output or 0)
        budget_settle(call.budget, cost_usd=task.cost_usd or Decimal(0), tokens=tokens)
        return task

    return sync_step(step)


def _failed(call: GatewayCall, **arguments) -> ProcessedTask:
    task = call_task_failure(**arguments)
    budget_release(call.budget)
    return task


def _member(request) -> None:
    if request.user.organization_id is None:
        raise InvalidInput("Only members of an organization can run AI work.", code="no_organization")


def call_start(request, data: dict, *, gateway: str) -> GatewayCall:
    """The synchronous step before a provider call (``data``: a validated
    ``ChatCompletionRequestSerializer``'s, whichever protocol it came in): the model and what it
    can honour, the input's size, the license counted and the running task recorded, the first
    key chosen."""
    started = time.monotonic()
    _member(request)
    model = model_by_name(name=data["model"])
    system, turns, options = data["system"], data["turns"], data["options"]
    refusal = _refusal(model, data)  # before anything is counted or called
    if refusal is not None:
        raise refusal
    estimated = _estimated_tokens(system, turns, options)
    fallbacks = [
        other
        for other in model_fallbacks(model=model)
        if _refusal(other, data) is None and estimated <= other.max_tokens_input
    ]
    if estimated > model.max_tokens_input:
        raise InvalidInput(
            "The input is too long for the model.",
            code="input_too_large",
            details={"estimated_tokens": estimated, "max_tokens_input": model.max_tokens_input},
        )
    chat_request = providers.ChatRequest(
        model_id=model.model_id,
        messages=turns,
        system=system,
        max_tokens=min(data.get("max_completion_tokens") or data.get("max_tokens") or 1024, model.max_tokens_output),
        temperature=data.get("temperature"),
        timeout=settings.AI_REQUEST_TIMEOUT_SECONDS,
        options=options,
    )
    return _call_begin(
        request,
        models=[model, *fallbacks],
        tokens=estimated,
        max_output=chat_request.max_tokens,
        input_text=_last_user_text(turns),
        variables={"messages": len(data["messages"]), "gateway": gateway},
        request=chat_request,
        stream=data["stream"],
        started=started,
    )


async def call_route(call: GatewayCall) -> RoutedAnswer:
    """The provider's answer (a stream's first event is in), or the failure recorded and raised."""

    def request_for(chosen: AIModel):
        if chosen is call.models[0]:
            return call.request
        max_tokens = min(call.request.max_tokens, chosen.max_tokens_output)
        return dataclasses.replace(call.request, model_id=chosen.model_id, max_tokens=max_tokens)

    try:
        if isinstance(call.request, dict):
            answer = await route_embeddings(
                models=call.models,
                body_for=lambda model: {**call.request, "model": model.model_id},
                timeout=settings.AI_REQUEST_TIMEOUT_SECONDS,
                start=call.route,
            )
        elif call.stream:
            return await route_chat_stream(models=call.models, request_for=request_for, start=call.route)
        else:
            answer = await route_chat(models=call.models, request_for=request_for, start=call.route)
    except (AIUnavailable, ProviderRejected) as error:
        attempts = (error.details or {}).get("attempts")
        await sync_step(_failed)(
            call, task=call.task, error=error, started=call.started, release_license=True, attempts=attempts
        )
        raise
    await _recorded(call_task_answer, call)(task=call.task, started=call.started, **routed_answer(answer))
    return answer


async def call_deltas(call: GatewayCall, answer: RoutedAnswer) -> AsyncGenerator[dict, None]:
    """A streamed answer's OpenAI deltas, its task's claim renewed as they come and the task
    recorded at the end (``answer.stream_state`` then holds usage and finish). A provider failing
    mid-stream is recorded and raised as a DomainError (``provider_<kind>``); a client leaving
    (this generator closed or cancelled) closes the provider's response and records what was
    produced. Whoever iterates it closes it (``aclose``) however its own iteration ends."""
    task, started, state = call.task, call.started, answer.stream_state
    # A piece comes at least every AI_REQUEST_TIMEOUT_SECONDS (the read timeout), well within the
    # stale time: renewing the claim as pieces come keeps a long stream alive.
    renew_every, renewed = settings.AI_TASK_STALE_SECONDS / 4, time.monotonic()
    try:
        async for delta in answer.stream:
            if time.monotonic() - renewed > renew_every:
                await sync_step(_keep_alive)(call)
                renewed = time.monotonic()
            yield delta
    except providers.ProviderError as error:
        failure = DomainError(str(error), code=f"provider_{error.kind}")
        await _recorded(call_task_failure, call)(task=task, error=failure, started=started, release_license=False)
        raise failure from None
    except (asyncio.CancelledError, GeneratorExit):
        # The request stays counted: the provider was already working.
        await answer.stream.aclose()
        gone = DomainError("The client disconnected before the answer was complete.", code="client_disconnected")
        await _recorded(call_task_disconnected, call)(task=task, state=state, error=gone, started=started)
        raise
    finally:
        await providers.clients_release()
    await _recorded(call_task_answer, call)(
        task=task,
        model=answer.model,
        key=answer.key,
        usage=state.usage,
        text=state.text,
        output_json=providers.tool_calls_json(state.tool_calls),
        attempts=answer.attempts,
        started=started,
    )


def _keep_alive(call: GatewayCall) -> None:
    """A long stream's task claim and budget reservation renewed."""
    task_heartbeat(task=call.task)
    budget_renew(call.budget)


def answered(call: GatewayCall, response):
    """The answer with the call's ``x-ratelimit-*`` headers."""
    for name, value in call.headers.items():
        response[name] = value
    return response


def event_stream(call: GatewayCall, events) -> StreamingHttpResponse:
    response = answered(call, StreamingHttpResponse(events, content_type="text/event-stream"))
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    response["X-Request-Id"] = str(uuid.uuid4())
    return response


GATEWAY_ERRORS = {
    402: OpenApiResponse(description="No active license."),
    429: OpenApiResponse(description="A monthly limit is reached."),
    503: OpenApiResponse(description="No provider key could answer."),
}


class ChatCompletionsView(_GatewayView):
    def prepare_post(self, request) -> tuple[GatewayCall, bool]:
        serializer = ChatCompletionRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        include_usage = bool((data.get("stream_options") or {}).get("include_usage"))
        return call_start(request, data, gateway="chat.completions"), include_usage

    @extend_schema(
        summary="Create a chat completion (OpenAI-compatible; stream: true answers server-sent events)",
        request=ChatCompletionRequestSerializer,
        responses={200: OpenApiTypes.OBJECT, **GATEWAY_ERRORS},
        tags=["gateway"],
    )
    async def post(self, request, prepared: tuple[GatewayCall, bool]):
        call, include_usage = prepared
        answer = await call_route(call)
        if call.stream:
            self.streaming = True
            return event_stream(call, self._events(call, answer, include_usage))
        result = answer.result
        return answered(
            call,
            Response(
                {
                    "id": f"chatcmpl-{call.task.pk.hex}",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": answer.model.model_id,
                    "choices": [
                        {
                            "index": 0,
                            "message": _answer_message(result.text, result.tool_calls),
                            "finish_reason": providers.finish_reason(result.finish_reason, result.tool_calls),
                        }
                    ],
                    "usage": _usage_body(result.usage),
                }
            ),
        )

    async def _events(self, call: GatewayCall, answer: RoutedAnswer, include_usage: bool):
        base = {
            "id": f"chatcmpl-{call.task.pk.hex}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": answer.model.model_id,
        }
        deltas = call_deltas(call, answer)
        try:
            yield _sse({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]})
            async for delta in deltas:
                yield _sse({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
        except DomainError as failure:
            yield _sse({"error": {"message": failure.message, "type": "provider_error", "code": failure.code}})
            return
        finally:
            await deltas.aclose()
        state = answer.stream_state
        finish = providers.finish_reason(state.finish_reason, state.calls)
        yield _sse({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
        if include_usage:
            yield _sse({**base, "choices": [], "usage": _usage_body(state.usage)})
        yield _sse("[DONE]")


def _makes_embeddings(model: AIModel) -> bool:
    """Anthropic has no embeddings API, whatever a model's capabilities say."""
    return "embeddings" in (model.capabilities or ()) and not providers.is_anthropic(model.provider)


class EmbeddingsView(_GatewayView):
    def prepare_post(self, request) -> GatewayCall:
        started = time.monotonic()
        serializer = EmbeddingsRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        _member(request)
        model = model_by_name(name=data["model"])
        if not _makes_embeddings(model):
            raise InvalidInput(
                f"The model {model.model_id} does not make embeddings.",
                code="model_capability_missing",
                details={"param": "model", "capability": "embeddings", "model": model.model_id},
            )
        inputs = data["inputs"]
        sizes = [estimate_tokens(item) if isinstance(item, str) else len(item) for item in inputs]  # text or ids
        largest = max(sizes)
        if largest > model.max_tokens_input:
            raise InvalidInput(
                "An input is too long for the model.",
                code="input_too_large",
                details={"param": "input", "estimated_tokens": largest, "max_tokens_input": model.max_tokens_input},
            )
        body = {name: data[name] for name in ("input", "encoding_format", "dimensions", "user") if name in data}
        first = inputs[0] if isinstance(inputs[0], str) else ""
        fallbacks = [other for other in model_fallbacks(model=model) if _makes_embeddings(other)]
        return _call_begin(
            request,
            models=[model, *fallbacks],
            tokens=sum(sizes),
            max_output=0,
            input_text=first[:2000],
            variables={"inputs": len(inputs), "gateway": "embeddings"},
            request=body,
            stream=False,
            started=started,
        )

    @extend_schema(
        summary="Create embeddings (OpenAI-compatible), metered by input tokens",
        request=EmbeddingsRequestSerializer,
        responses={200: OpenApiTypes.OBJECT, **GATEWAY_ERRORS},
        tags=["gateway"],
    )
    async def post(self, request, prepared: GatewayCall):
        answer = await call_route(prepared)
        tokens = answer.result.usage.tokens_input
        return answered(
            prepared,
            Response(
                {
                    "object": "list",
                    "data": answer.result.data,
                    "model": answer.model.model_id,
                    "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
                }
            ),
        )


class TranslatedCallView(_GatewayView):
    """A gateway protocol whose request is carried into a chat completion request
    (``chat_body(data)``) and takes its call path; subclasses render the answer."""

    #: the task's ``input_variables.gateway``
    gateway = ""

    @staticmethod
    def chat_body(data: dict) -> dict:
        raise NotImplementedError

    def prepare_post(self, request) -> GatewayCall:
        if not isinstance(request.data, dict):
            field_error("non_field_errors", "Expected a JSON object.")
        serializer = ChatCompletionRequestSerializer(data=self.chat_body(request.data))
        serializer.is_valid(raise_exception=True)
        return call_start(request, serializer.validated_data, gateway=self.gateway)
