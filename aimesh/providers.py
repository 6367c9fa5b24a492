"""Provider adapters on the official SDKs: one request shape in, one normalized answer out.

``openai`` serves OpenAI and every OpenAI-compatible endpoint (Azure OpenAI, Groq, Mistral,
DeepSeek, OpenRouter, vLLM, Ollama) through its base URL; ``anthropic`` serves Anthropic. Usage
is normalized so that ``tokens_input`` is the whole prompt and ``tokens_cached`` the part of it
served from cache (never charged twice). Every provider failure becomes a ``ProviderError`` of
one of five kinds. SDK retries are off: the router retries on other keys and models. The calls
are coroutines (the SDKs' async clients): a call waiting on a provider holds no thread.
"""

import asyncio
import json
import weakref
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field

import anthropic
import httpx
import openai
from asgiref.sync import async_to_sync
from django.conf import settings
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from aimesh.models import Provider
from celaest.aio import is_serving_loop

RATE_LIMITED = "rate_limited"
OVERLOADED = "overloaded"
BAD_KEY = "bad_key"
BAD_REQUEST = "bad_request"
TIMEOUT = "timeout"
#: failures another key (or model) may not have: the router moves on
RETRYABLE = frozenset({RATE_LIMITED, OVERLOADED, TIMEOUT, BAD_KEY})

DEFAULT_BASE_URLS = {
    Provider.OPENAI: "https://api.openai.com/v1",
    Provider.GROQ: "https://api.groq.com/openai/v1",
    Provider.MISTRAL: "https://api.mistral.ai/v1",
    Provider.DEEPSEEK: "https://api.deepseek.com/v1",
    Provider.OPENROUTER: "https://openrouter.ai/api/v1",
    Provider.OLLAMA: "http://127.0.0.1:11434/v1",
}


@dataclass(frozen=True)
class ChatRequest:
    model_id: str
    messages: list[dict]  # [{"role": "user"|"assistant", "content": str}]
    system: str = ""
    max_tokens: int = 1024
    temperature: float | None = None
    json_mode: bool = False
    timeout: float = 60.0


@dataclass
class Usage:
    tokens_input: int = 0  # the whole prompt, cached part included
    tokens_output: int = 0
    tokens_cached: int = 0  # part of tokens_input read from the provider's cache


@dataclass
class ChatResult:
    text: str
    usage: Usage
    output_json: dict | list | None = None
    finish_reason: str = ""


@dataclass
class StreamState:
    """What a stream has produced so far; complete once the iterator is exhausted."""

    parts: list[str] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    finish_reason: str = ""

    @property
    def text(self) -> str:
        return "".join(self.parts)


class ProviderError(Exception):
    def __init__(self, kind: str, message: str, *, status: int | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        return self.kind in RETRYABLE


def is_anthropic(provider: str) -> bool:
    return provider == Provider.ANTHROPIC


def parse_json_output(text: str):
    """The JSON a JSON-mode answer carries (tolerating a fenced block), else None."""
    candidate = text.strip()
    if candidate.startswith("```"):
        candidate = candidate.strip("`")
        candidate = candidate[candidate.find("\n") + 1 :] if "\n" in candidate else candidate
    try:
        return json.loads(candidate)
    except ValueError:
        return None


def _retry_after(response) -> float | None:
    if response is None:
        return None
    value = response.headers.get("retry-after")
    try:
        return max(float(value), 0.0) if value is not None else None
    except ValueError:
        return None


def _map_status_error(status: int, message: str, response) -> ProviderError:
    if status == 429:
        return ProviderError(RATE_LIMITED, message, status=status, retry_after=_retry_after(response))
    if status in (401, 403):
        return ProviderError(BAD_KEY, message, status=status)
    if status == 408:
        return ProviderError(TIMEOUT, message, status=status)
    if status >= 500:  # 500, 502, 503, Anthropic's 529 overloaded
        return ProviderError(OVERLOADED, message, status=status, retry_after=_retry_after(response))
    return ProviderError(BAD_REQUEST, message, status=status)


def _mapped(exc: Exception) -> ProviderError:
    """One ProviderError for any SDK exception (both SDKs share the same shape of hierarchy)."""
    if isinstance(exc, openai.APITimeoutError | anthropic.APITimeoutError):
        return ProviderError(TIMEOUT, "The provider did not answer in time.")
    if isinstance(exc, openai.APIStatusError | anthropic.APIStatusError):
        return _map_status_error(exc.status_code, _short(exc), exc.response)
    if isinstance(exc, openai.APIConnectionError | anthropic.APIConnectionError):
        return ProviderError(OVERLOADED, "The provider could not be reached.")
    return ProviderError(BAD_REQUEST, _short(exc))


def _short(exc: Exception) -> str:
    return str(getattr(exc, "message", None) or exc)[:300]


# -- clients -------------------------------------------------------------------------------------
#
# The SDKs' async clients, so that a call waiting on a provider holds no thread. Each event loop
# (the ASGI worker's, or one a Celery job runs) has one HTTP connection pool per provider family
# and base URL, shared by every key calling it; the SDK client per key only carries its secret.
# A pool belongs to its loop (its connections do): ``clients_close`` ends a loop's pools.

#: per event loop: {(sdk, base_url): pooled HTTP client, (sdk, api_key, base_url): SDK client}
_loop_clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict]" = weakref.WeakKeyDictionary()


def _clients() -> dict:
    loop = asyncio.get_running_loop()
    found = _loop_clients.get(loop)
    if found is None:
        found = _loop_clients[loop] = {}
    return found


def _http_limits() -> httpx.Limits:
    connections = settings.AI_HTTP_MAX_CONNECTIONS
    return httpx.Limits(max_connections=connections, max_keepalive_connections=connections, keepalive_expiry=30)


def _openai_client(api_key: str, base_url: str) -> openai.AsyncOpenAI:
    clients = _clients()
    client = clients.get(("openai", api_key, base_url))
    if client is None:
        http = clients.get(("openai", base_url))
        if http is None:
            http = clients["openai", base_url] = openai.DefaultAsyncHttpxClient(limits=_http_limits())
        client = clients["openai", api_key, base_url] = openai.AsyncOpenAI(
            api_key=api_key, base_url=base_url or None, max_retries=0, http_client=http
        )
    return client


def _anthropic_client(api_key: str, base_url: str) -> anthropic.AsyncAnthropic:
    clients = _clients()
    client = clients.get(("anthropic", api_key, base_url))
    if client is None:
        http = clients.get(("anthropic", base_url))
        if http is None:
            http = clients["anthropic", base_url] = anthropic.DefaultAsyncHttpxClient(limits=_http_limits())
        client = clients["anthropic", api_key, base_url] = anthropic.AsyncAnthropic(
            api_key=api_key, base_url=base_url or None, max_retries=0, http_client=http
        )
    return client


class ServingLoopClients:
    """Connected to ``celaest.hooks.serving_loop_observers``: an ASGI server's loop closes its
    connection pools when it stops (they stay open across its requests)."""

    def started(self) -> None:
        pass

    async def stopping(self) -> None:
        await clients_close()


serving_loop_clients = ServingLoopClients()


async def clients_release() -> None:
    """After a request: close the pools unless the loop serves many requests. Django runs an
    async view under WSGI (or its test client) on a loop made for that request alone."""
    if not is_serving_loop():
        await clients_close()


async def clients_close() -> None:
    """Close this event loop's connection pools (before the loop ends: a Celery job's)."""
    clients = _loop_clients.pop(asyncio.get_running_loop(), {})
    for name, client in clients.items():
        if len(name) == 2:  # the pooled HTTP clients; the SDK clients only borrow them
            await client.aclose()


def run_sync(function, /, *args, **kwargs):
    """Run the coroutine function from synchronous code (a Celery job, a command) and close the
    provider connections it opened. The ORM calls it makes (``sync_to_async``) come back to the
    calling thread, on its database connection."""

    async def main():
        try:
            return await function(*args, **kwargs)
        finally:
            await clients_close()

    return async_to_sync(main)()


def _openai_base_url(provider: str, base_url: str) -> str:
    url = (base_url or DEFAULT_BASE_URLS.get(provider, "")).rstrip("/")
    if url and not url.endswith("/v1"):
        # A bare host (the fake provider, vLLM on a port) speaks under /v1.
        url = url + "/v1"
    return url


def _openai_messages(request: ChatRequest) -> list[dict]:
    system = [{"role": "system", "content": request.system}] if request.system else []
    return system + list(request.messages)


def _openai_body(request: ChatRequest) -> dict:
    body = {"model": request.model_id, "messages": _openai_messages(request), "max_tokens": request.max_tokens}
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.json_mode:
        body["response_format"] = {"type": "json_object"}
    return body


async def _openai_post(provider: str, api_key: str, base_url: str, request: ChatRequest, *, stream: bool):
    """``chat.completions.create`` without its parameter transform: the SDK's own request (auth,
    timeout, error classes) and response types, for a body that is plain JSON already. The
    transform walks the parameters' typed dicts on every call, a tenth of a gateway request."""
    body = _openai_body(request)
    if stream:
        body.update(stream=True, stream_options={"include_usage": True})
    client = _openai_client(api_key, _openai_base_url(provider, base_url))
    return await client.post(
        "/chat/completions",
        body=body,
        cast_to=ChatCompletion,
        options={"timeout": request.timeout},
        stream=stream,
        stream_cls=openai.AsyncStream[ChatCompletionChunk],
    )


def _openai_usage(usage) -> Usage:
    if usage is None:
        return Usage()
    details = getattr(usage, "prompt_tokens_details", None)
    cached = (getattr(details, "cached_tokens", None) or 0) if details else 0
    return Usage(
        tokens_input=usage.prompt_tokens or 0, tokens_output=usage.completion_tokens or 0, tokens_cached=cached
    )


def _anthropic_kwargs(request: ChatRequest) -> dict:
    system = request.system
    if request.json_mode:
        # Anthropic has no JSON switch: the instruction is part of the system prompt.
        system = (system + "\n\n" if system else "") + "Answer with a single JSON object and nothing else."
    kwargs = {
        "model": request.model_id,
        "messages": list(request.messages),
        "max_tokens": request.max_tokens,
        "timeout": request.timeout,
    }
    if system:
        kwargs["system"] = system
    # The messages API of this SDK generation takes no sampling temperature: it is not sent.
    return kwargs


def _anthropic_usage(usage) -> Usage:
    if usage is None:
        return Usage()
    cached = getattr(usage, "cache_read_input_tokens", None) or 0
    created = getattr(usage, "cache_creation_input_tokens", None) or 0
    # Anthropic's input_tokens excludes cache reads and writes: the prompt is their sum.
    return Usage(
        tokens_input=(usage.input_tokens or 0) + cached + created,
        tokens_output=usage.output_tokens or 0,
        tokens_cached=cached,
    )


# -- calls ---------------------------------------------------------------------------------------


async def chat(*, provider: str, api_key: str, base_url: str, request: ChatRequest) -> ChatResult:
    """One completion. Raises ProviderError."""
    try:
        if is_anthropic(provider):
            message = await _anthropic_client(api_key, base_url).messages.create(**_anthropic_kwargs(request))
            text = "".join(block.text for block in message.content if getattr(block, "type", "") == "text")
            usage, finish = _anthropic_usage(message.usage), message.stop_reason or ""
        else:
            completion = await _openai_post(provider, api_key, base_url, request, stream=False)
            choice = completion.choices[0] if completion.choices else None
            text = (choice.message.content or "") if choice else ""
            usage, finish = _openai_usage(completion.usage), (choice.finish_reason or "") if choice else ""
    except (openai.OpenAIError, anthropic.AnthropicError) as exc:
        raise _mapped(exc) from exc
    output_json = parse_json_output(text) if request.json_mode else None
    return ChatResult(text=text, usage=usage, output_json=output_json, finish_reason=finish)


async def chat_stream(
    *, provider: str, api_key: str, base_url: str, request: ChatRequest
) -> tuple[StreamState, AsyncGenerator[str, None]]:
    """Start a streamed completion: the first event is awaited here (so a failing key raises
    ProviderError before anything is sent to the caller), then the generator yields text pieces
    and fills ``state`` (usage arrives with the last event). Closing the generator (``aclose``)
    closes the provider's response."""
    state = StreamState()
    stream = None
    try:
        if is_anthropic(provider):
            stream = await _anthropic_client(api_key, base_url).messages.create(
                **_anthropic_kwargs(request), stream=True
            )
        else:
            stream = await _openai_post(provider, api_key, base_url, request, stream=True)
        events = stream.__aiter__()
        first = await anext(events, None)
    except (openai.OpenAIError, anthropic.AnthropicError) as exc:
        if stream is not None:
            await stream.close()
        raise _mapped(exc) from exc
    reader = _anthropic_event if is_anthropic(provider) else _openai_event

    async def pieces():
        event = first
        try:
            while event is not None:
                piece = reader(event, state)
                if piece:
                    state.parts.append(piece)
                    yield piece
                event = await anext(events, None)
        except (openai.OpenAIError, anthropic.AnthropicError) as exc:
            raise _mapped(exc) from exc
        finally:
            await stream.close()

    return state, pieces()


def _openai_event(chunk, state: StreamState) -> str:
    if chunk.usage is not None:
        state.usage = _openai_usage(chunk.usage)
    if not chunk.choices:
        return ""
    choice = chunk.choices[0]
    if choice.finish_reason:
        state.finish_reason = choice.finish_reason
    return choice.delta.content or "" if choice.delta else ""


def _anthropic_event(event, state: StreamState) -> str:
    kind = getattr(event, "type", "")
    if kind == "message_start":
        state.usage = _anthropic_usage(event.message.usage)
    elif kind == "content_block_delta" and getattr(event.delta, "type", "") == "text_delta":
        return event.delta.text
    elif kind == "message_delta":
        state.usage.tokens_output = event.usage.output_tokens or state.usage.tokens_output
        state.finish_reason = event.delta.stop_reason or state.finish_reason
    return ""


async def probe(*, provider: str, api_key: str, base_url: str, timeout: float = 10.0) -> None:
    """A cheap authenticated call (list the models) to tell whether a key works. Raises ProviderError."""
    try:
        if is_anthropic(provider):
            await _anthropic_client(api_key, base_url).models.list(timeout=timeout)
        else:
            await _openai_client(api_key, _openai_base_url(provider, base_url)).models.list(timeout=timeout)
    except (openai.OpenAIError, anthropic.AnthropicError) as exc:
        raise _mapped(exc) from exc
