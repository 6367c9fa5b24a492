"""Provider adapters on the official SDKs: one request shape in, one normalized answer out.

``openai`` serves OpenAI and every OpenAI-compatible endpoint (Azure OpenAI, Groq, Mistral,
DeepSeek, OpenRouter, vLLM, Ollama) through its base URL; ``anthropic`` serves Anthropic. Usage
is normalized so that ``tokens_input`` is the whole prompt and ``tokens_cached`` the part of it
served from cache (never charged twice). Every provider failure becomes a ``ProviderError`` of
one of five kinds. SDK retries are off: the router retries on other keys and models. The calls
are coroutines (the SDKs' async clients): a call waiting on a provider holds no thread.
"""

import asyncio
import functools
import json
import weakref
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field

import aiohttp
import anthropic
import httpx2
import openai
from asgiref.sync import async_to_sync
from django.conf import settings

from aimesh import translate
from aimesh.models import Provider
from celaest.aio import is_serving_loop

RATE_LIMITED = "rate_limited"
OVERLOADED = "overloaded"
BAD_KEY = "bad_key"
BAD_REQUEST = "bad_request"
TIMEOUT = "timeout"
#: failures another key (or model) may not have: the router moves on
RETRYABLE = frozenset({RATE_LIMITED, OVERLOADED, TIMEOUT, BAD_KEY})
#: response formats whose answer is JSON
JSON_FORMATS = ("json_object", "json_schema")

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
    #: OpenAI's shape, system messages apart: {"role": "user"|"assistant"|"tool", "content": str or
    #: parts, "tool_calls": [...], "tool_call_id": ...} (``aimesh.translate`` for Anthropic)
    messages: list[dict]
    system: str = ""
    max_tokens: int = 1024
    temperature: float | None = None
    json_mode: bool = False
    timeout: float = 60.0
    #: further OpenAI request options, validated by the caller: tools, tool_choice,
    #: parallel_tool_calls, response_format, stop, top_p, seed, presence/frequency_penalty, user
    options: dict = field(default_factory=dict)


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
    finish_reason: str = ""  # OpenAI's: stop, length, tool_calls, content_filter
    tool_calls: list[dict] = field(default_factory=list)  # OpenAI's shape


def finish_reason(reason: str, tool_calls) -> str:
    """An answer's finish reason, OpenAI's, when the provider gave none."""
    return reason or ("tool_calls" if tool_calls else "stop")


def tool_calls_json(tool_calls: list[dict]) -> dict | None:
    """What a task records of an answer's tool calls (``output_json``)."""
    return {"tool_calls": tool_calls} if tool_calls else None


@dataclass
class StreamState:
    """What a stream has produced so far; complete once the iterator is exhausted."""

    parts: list[str] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    finish_reason: str = ""
    #: tool calls as their deltas built them, by OpenAI's index
    calls: dict[int, dict] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return "".join(self.parts)

    @property
    def tool_calls(self) -> list[dict]:
        return [self.calls[index] for index in sorted(self.calls)]

    def add(self, delta: dict) -> None:
        """Take one OpenAI delta (its text, or pieces of tool calls)."""
        if delta.get("content"):
            self.parts.append(delta["content"])
        for piece in delta.get("tool_calls") or ():
            call = self.calls.setdefault(piece.get("index", 0), translate.tool_call("", "", ""))
            call["id"] = piece.get("id") or call["id"]
            function = piece.get("function") or {}
            call["function"]["name"] = function.get("name") or call["function"]["name"]
            call["function"]["arguments"] += function.get("arguments") or ""


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
# The pools are the SDKs' own aiohttp transport (``DefaultAioHttpClient``): the same requests,
# headers, timeouts and errors as their default httpx transport, whose asyncio connection pool
# cost about 8 ms of CPU per call at 50 calls in flight against 1.2-1.6 ms for aiohttp
# (bench/aimesh/README.md) and stood between the gateway and its provider.

#: per event loop: {(sdk, base_url): pooled HTTP client, (sdk, api_key, base_url): SDK client}
_loop_clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict]" = weakref.WeakKeyDictionary()


def _clients() -> dict:
    loop = asyncio.get_running_loop()
    found = _loop_clients.get(loop)
    if found is None:
        found = _loop_clients[loop] = {}
    return found


def _http_limits() -> httpx2.Limits:
    connections = settings.AI_HTTP_MAX_CONNECTIONS
    return httpx2.Limits(max_connections=connections, max_keepalive_connections=connections, keepalive_expiry=30)


#: each SDK's async client class
_SDK_CLIENTS = {openai: openai.AsyncOpenAI, anthropic: anthropic.AsyncAnthropic}


def _sdk_client(sdk, api_key: str, base_url: str):
    """The SDK's client for this key and endpoint, on this loop's pool for the endpoint."""
    clients = _clients()
    name = sdk.__name__
    client = clients.get((name, api_key, base_url))
    if client is None:
        http = clients.get((name, base_url))
        if http is None:
            http = clients[name, base_url] = sdk.DefaultAioHttpClient(limits=_http_limits())
        client = clients[name, api_key, base_url] = _SDK_CLIENTS[sdk](
            api_key=api_key, base_url=base_url or None, max_retries=0, http_client=http
        )
    return client


def _openai_client(api_key: str, base_url: str) -> openai.AsyncOpenAI:
    return _sdk_client(openai, api_key, base_url)


def _anthropic_client(api_key: str, base_url: str) -> anthropic.AsyncAnthropic:
    return _sdk_client(anthropic, api_key, base_url)


async def clients_release() -> None:
    """After a request: close the pools unless the loop serves many requests. Django runs an
    async view under WSGI (or its test client) on a loop made for that request alone."""
    if not is_serving_loop():
        await clients_close()


async def clients_close() -> None:
    """Close this event loop's connection pools (before the loop ends: a Celery job's, or an ASGI
    server's, as one of ``celaest.hooks.serving_loop_stop_observers``)."""
    clients = _loop_clients.pop(asyncio.get_running_loop(), {})
    for name, client in clients.items():
        if name[0] == "wire":
            await client.close()  # an aiohttp session
        elif len(name) == 2:  # the SDKs' pooled HTTP clients; their SDK clients only borrow them
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
    body.update(request.options)
    return body


# -- the OpenAI protocol on the hot path ---------------------------------------------------------
#
# Chat completions of OpenAI-compatible providers are sent by this lean client, over aiohttp,
# instead of through the SDK's request machinery, which cost about 3 ms of CPU per call (a third
# of a gateway request under load: building the request, httpx2's client layers, the typed
# response; py-spy on bench/aimesh regime 1). It keeps the SDK's behaviour: the same headers
# (taken from the SDK client: user agent, platform, ``X-Stainless-*``), the same URL, read
# timeout and errors (``Error code: <status> - <message>``, ``Retry-After`` honoured), and is
# tested by the same tests against the local provider. Key probes still go through the SDK.


def _wire_session(url: str) -> aiohttp.ClientSession:
    clients = _clients()
    session = clients.get(("wire", url))
    if session is None:
        connector = aiohttp.TCPConnector(limit=settings.AI_HTTP_MAX_CONNECTIONS, keepalive_timeout=30)
        session = clients["wire", url] = aiohttp.ClientSession(connector=connector)
    return session


def _wire_headers(api_key: str, url: str) -> dict:
    """The SDK's headers for this key and endpoint (computed once per loop)."""
    clients = _clients()
    headers = clients.get(("wire-headers", api_key, url))
    if headers is None:
        sdk = _openai_client(api_key, url)
        headers = {name: value for name, value in sdk.default_headers.items() if isinstance(value, str)}
        headers.update({"Authorization": f"Bearer {api_key}", "X-Stainless-Retry-Count": "0"})
        clients["wire-headers", api_key, url] = headers
    return headers


async def _wire_post(provider: str, api_key: str, base_url: str, request: ChatRequest, *, stream: bool):
    """POST /chat/completions; the response once its status is a success, else ProviderError."""
    body = _openai_body(request)
    if stream:
        body.update(stream=True, stream_options={"include_usage": True})
    return await _wire_send(provider, api_key, base_url, "/chat/completions", body, request.timeout)


async def _wire_send(provider: str, api_key: str, base_url: str, path: str, body: dict, timeout_seconds: float):
    """POST ``body`` to ``path`` of the provider's OpenAI API; the response once its status is a
    success, else ProviderError."""
    url = _openai_base_url(provider, base_url)
    headers = {**_wire_headers(api_key, url), "X-Stainless-Read-Timeout": str(timeout_seconds)}
    timeout = aiohttp.ClientTimeout(total=None, connect=timeout_seconds, sock_read=timeout_seconds)
    try:
        response = await _wire_session(url).post(
            f"{url}{path}", data=json.dumps(body).encode(), headers=headers, timeout=timeout
        )
    except TimeoutError:
        raise ProviderError(TIMEOUT, "The provider did not answer in time.") from None
    except (aiohttp.ClientError, OSError):
        raise ProviderError(OVERLOADED, "The provider could not be reached.") from None
    if response.status < 400:
        return response
    try:
        text = (await response.text()).strip()
    except (TimeoutError, aiohttp.ClientError):
        text = ""
    finally:
        response.release()
    message = f"Error code: {response.status}"
    try:
        error = json.loads(text)
    except ValueError:
        error = None
    error = error.get("error", error) if isinstance(error, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str) and error["message"]:
        message += f" - {error['message']}"
    raise _map_status_error(response.status, message[:300], response)


async def _wire_read(response: aiohttp.ClientResponse, read):
    """``read(response)``, its failures as ProviderErrors."""
    try:
        return await read(response)
    except TimeoutError:
        raise ProviderError(TIMEOUT, "The provider did not answer in time.") from None
    except (aiohttp.ClientError, OSError, ValueError) as exc:
        raise ProviderError(OVERLOADED, f"The provider's answer was cut short: {exc}"[:300]) from None


async def _wire_json(response: aiohttp.ClientResponse):
    """A successful response's JSON body (its failures as ProviderErrors), the connection freed."""
    try:
        return await _wire_read(response, lambda answer: answer.json(content_type=None))
    finally:
        response.release()


@dataclass
class EmbeddingsResult:
    #: the provider's ``data`` as it sent it (floats, or base64 when asked)
    data: list
    usage: Usage
    #: what a task records of it (as of a ``ChatResult``): no text, how many embeddings
    text: str = ""
    output_json: dict | None = None


async def embed(*, provider: str, api_key: str, base_url: str, body: dict, timeout: float) -> EmbeddingsResult:
    """Embeddings of an OpenAI-compatible provider (``body``: OpenAI's request, validated by the
    caller). Anthropic has no embeddings API. Raises ProviderError."""
    answer = await _wire_json(await _wire_send(provider, api_key, base_url, "/embeddings", body, timeout))
    if not isinstance(answer, dict) or not isinstance(answer.get("data"), list):
        raise ProviderError(OVERLOADED, "The provider's answer is not a list of embeddings.")
    usage = answer.get("usage") if isinstance(answer.get("usage"), dict) else {}
    return EmbeddingsResult(
        data=answer["data"],
        usage=Usage(tokens_input=usage.get("prompt_tokens") or 0),
        output_json={"embeddings": len(answer["data"])},
    )


async def _wire_chat(provider: str, api_key: str, base_url: str, request: ChatRequest) -> ChatResult:
    completion = await _wire_json(await _wire_post(provider, api_key, base_url, request, stream=False))
    if not isinstance(completion, dict):
        raise ProviderError(OVERLOADED, "The provider's answer is not a completion.")
    choices = completion.get("choices") or []
    choice = choices[0] if choices and isinstance(choices[0], dict) else {}
    message = choice.get("message") or {}
    return ChatResult(
        text=message.get("content") or "",
        usage=_openai_usage(completion.get("usage")),
        finish_reason=choice.get("finish_reason") or "",
        tool_calls=[call for call in message.get("tool_calls") or () if isinstance(call, dict)],
    )


async def _wire_events(response: aiohttp.ClientResponse):
    """The server-sent events of a stream, decoded, until ``[DONE]``."""
    while True:
        line = await _wire_read(response, lambda answer: answer.content.readline())
        if not line:
            return
        line = line.strip()
        if not line.startswith(b"data:"):
            continue
        payload = line[5:].strip()
        if payload == b"[DONE]":
            return
        try:
            event = json.loads(payload)
        except ValueError:
            raise ProviderError(OVERLOADED, "The provider sent an unreadable event.") from None
        if not isinstance(event, dict):
            continue
        if event.get("error"):
            error = event["error"]
            message = error.get("message") if isinstance(error, dict) else str(error)
            raise ProviderError(BAD_REQUEST, str(message or "The provider reported an error.")[:300])
        yield event


def _openai_usage(usage: dict | None) -> Usage:
    if not usage:
        return Usage()
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    return Usage(
        tokens_input=usage.get("prompt_tokens") or 0,
        tokens_output=usage.get("completion_tokens") or 0,
        tokens_cached=cached,
    )


def _anthropic_kwargs(request: ChatRequest) -> dict:
    # The messages API of this SDK generation takes no sampling temperature: a prompt's is not
    # sent (the gateway refuses one, ``translate.unsupported_options``).
    return {
        "model": request.model_id,
        "max_tokens": request.max_tokens,
        "timeout": request.timeout,
        **translate.anthropic_arguments(
            messages=request.messages, system=request.system, options=request.options, json_mode=request.json_mode
        ),
    }


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
    if is_anthropic(provider):
        try:
            message = await _anthropic_client(api_key, base_url).messages.create(**_anthropic_kwargs(request))
        except anthropic.AnthropicError as exc:
            raise _mapped(exc) from exc
        text, calls = translate.openai_answer(message.content)
        result = ChatResult(
            text=text,
            usage=_anthropic_usage(message.usage),
            finish_reason=translate.finish_reason(message.stop_reason),
            tool_calls=calls,
        )
    else:
        result = await _wire_chat(provider, api_key, base_url, request)
    if request.json_mode or (request.options.get("response_format") or {}).get("type") in JSON_FORMATS:
        result.output_json = parse_json_output(result.text)
    else:
        result.output_json = tool_calls_json(result.tool_calls)
    return result


async def chat_stream(
    *, provider: str, api_key: str, base_url: str, request: ChatRequest
) -> tuple[StreamState, AsyncGenerator[dict, None]]:
    """Start a streamed completion: the first event is awaited here (so a failing key raises
    ProviderError before anything is sent to the caller), then the generator yields OpenAI
    deltas (``{"content": ...}``, ``{"tool_calls": [...]}``) and fills ``state`` (usage arrives
    with the last event). Closing the generator (``aclose``) closes the provider's response."""
    if is_anthropic(provider):
        return await _anthropic_stream(api_key, base_url, request)
    state = StreamState()
    response = await _wire_post(provider, api_key, base_url, request, stream=True)
    events = _wire_events(response)
    try:
        first = await anext(events, None)
    except BaseException:
        response.close()
        raise

    async def close():
        response.close()

    return state, _pieces(first, events, _openai_event, state, close)


async def _anthropic_stream(api_key: str, base_url: str, request: ChatRequest):
    state = StreamState()
    stream = None
    try:
        stream = await _anthropic_client(api_key, base_url).messages.create(**_anthropic_kwargs(request), stream=True)
        events = stream.__aiter__()
        first = await anext(events, None)
    except anthropic.AnthropicError as exc:
        if stream is not None:
            await stream.close()
        raise _mapped(exc) from exc

    read = functools.partial(_anthropic_event, deltas=translate.AnthropicDeltas())
    return state, _pieces(first, events, read, state, stream.close)


async def _pieces(first, events, read, state: StreamState, close) -> AsyncGenerator[dict, None]:
    """The deltas of a stream whose first event is ``first``: ``read`` turns an event into its
    OpenAI delta, or None (filling ``state`` with usage and finish), and ``close`` ends the
    provider's response, however the stream ends (its last event, a failure, or the caller
    closing this generator)."""
    event = first
    try:
        while event is not None:
            delta = read(event, state)
            if delta:
                state.add(delta)
                yield delta
            event = await anext(events, None)
    except anthropic.AnthropicError as exc:  # the lean OpenAI client raises ProviderError itself
        raise _mapped(exc) from exc
    finally:
        await close()


def _openai_event(chunk: dict, state: StreamState) -> dict | None:
    if chunk.get("usage"):
        state.usage = _openai_usage(chunk["usage"])
    choices = chunk.get("choices") or []
    if not choices or not isinstance(choices[0], dict):
        return None
    choice = choices[0]
    if choice.get("finish_reason"):
        state.finish_reason = choice["finish_reason"]
    delta = choice.get("delta") or {}
    found = {name: delta[name] for name in ("content", "tool_calls") if delta.get(name)}
    return found or None


def _anthropic_event(event, state: StreamState, deltas: translate.AnthropicDeltas) -> dict | None:
    kind = getattr(event, "type", "")
    if kind == "message_start":
        state.usage = _anthropic_usage(event.message.usage)
    elif kind == "content_block_start":
        return deltas.start(event.index, event.content_block)
    elif kind == "content_block_delta":
        return deltas.delta(event.index, event.delta)
    elif kind == "message_delta":
        state.usage.tokens_output = event.usage.output_tokens or state.usage.tokens_output
        state.finish_reason = translate.finish_reason(event.delta.stop_reason) or state.finish_reason
    return None


async def probe(*, provider: str, api_key: str, base_url: str, timeout: float = 10.0) -> None:
    """A cheap authenticated call (list the models) to tell whether a key works. Raises ProviderError."""
    try:
        if is_anthropic(provider):
            await _anthropic_client(api_key, base_url).models.list(timeout=timeout)
        else:
            await _openai_client(api_key, _openai_base_url(provider, base_url)).models.list(timeout=timeout)
    except (openai.OpenAIError, anthropic.AnthropicError) as exc:
        raise _mapped(exc) from exc
