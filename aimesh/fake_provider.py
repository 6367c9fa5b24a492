"""A local AI provider for development, tests and benchmarks.

It speaks the OpenAI chat-completions protocol (``POST /v1/chat/completions``, with ``stream``
as server-sent events and usage in a final chunk when ``stream_options.include_usage``),
OpenAI's embeddings (``POST /v1/embeddings``: deterministic unit vectors, floats or base64),
``GET /v1/models`` and the Anthropic messages protocol (``POST /v1/messages``, streaming too),
so the official SDKs run unchanged against it. Answers are deterministic, usage numbers follow
the providers' rules (about four characters a token; OpenAI caches whole 128-token blocks of a
prompt of 1024 tokens or more), and failures are injected per API key:

- a key containing ``fail-429`` answers 429 with ``Retry-After`` (``fail-429`` + ``-rN`` sets N s),
- ``fail-500``, ``fail-529`` (overloaded), ``fail-401`` and ``hang`` (never answers in time).

Tools, images and stop sequences behave as a model's would, deterministically: given tools (and
a tool choice other than none) and a conversation that does not end with tool results, it calls
the chosen tool (else the first) with arguments made from the tool's parameter schema; given
tool results last, it answers "Tool said: <results>"; images make the answer begin "I see N
image(s)."; an answer is cut before the first stop sequence it contains. The last request bodies
are kept (``bodies``) for tests to check what reached the provider.

Tests start it in a thread on port 0 (``FakeProvider().start()``) and may switch a key's
failure mode at run time (``set_failure``) and read how often each key was called (``hits``).
"""

import base64
import hashlib
import json
import math
import re
import struct
import sys
import threading
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODELS = (
    "gpt-4o-mini",
    "gpt-4o",
    "claude-haiku-4-5",
    "claude-sonnet-4-5",
    "fake-small",
    "fake-large",
    "text-embedding-3-small",
)
_WORDS = (
    "the request was processed and the answer is ready with a short summary of the main points "
    "including the customer's intent the next action and a confidence estimate for the review team"
).split()
_FAILURE_PATTERN = re.compile(r"fail-(429|500|529|401|403|400)(?:-r(\d+))?|(hang)")
_CACHE_BLOCK = 128
_CACHE_MIN = 1024


def estimate_tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4))


def _content_text(content) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def embedding_vector(text: str, dimensions: int) -> list[float]:
    """A deterministic unit vector for ``text``."""
    digest = hashlib.sha256(text.encode()).digest()
    raw = [(digest[i % len(digest)] - 127.5) / 127.5 for i in range(dimensions)]
    norm = math.sqrt(sum(x * x for x in raw)) or 1.0
    return [x / norm for x in raw]


def deterministic_answer(prompt_text: str, *, json_mode: bool, max_tokens: int) -> str:
    """The same prompt always gets the same answer (a digest picks the words)."""
    digest = hashlib.sha256(prompt_text.encode()).digest()
    count = 8 + digest[0] % 17
    words = [_WORDS[(digest[i % len(digest)] + i) % len(_WORDS)] for i in range(count)]
    words = words[: max(1, max_tokens)]
    sentence = " ".join(words).capitalize() + "."
    if json_mode:
        return json.dumps({"answer": sentence, "input_chars": len(prompt_text), "digest": digest.hex()[:12]})
    return sentence


def _arguments_for(schema, prompt_text: str) -> dict:
    """Arguments for a tool from its parameter schema: strings from the prompt, numbers 1."""
    values = {"string": prompt_text[:40], "integer": 1, "number": 1, "boolean": True, "array": [], "object": {}}
    properties = (schema or {}).get("properties") or {}
    return {name: values.get((spec or {}).get("type"), None) for name, spec in properties.items()}


@dataclass
class _Reply:
    text: str
    #: [(id, name, arguments as JSON)]
    calls: list[tuple[str, str, str]]
    stopped: bool  # cut at a stop sequence


def _reply(*, prompt_text: str, json_mode: bool, max_tokens: int, tool_results: list[str], images: int,
           tools: list[tuple[str, dict]], forced: str | None, stop) -> _Reply:  # fmt: skip
    """What the fake model answers. ``tools``: [(name, parameter schema)]; ``forced``: the tool
    the choice names, "none" when tools may not be called."""
    digest = hashlib.sha256(prompt_text.encode()).hexdigest()
    if tools and not tool_results and forced != "none":
        name, schema = next(((n, p) for n, p in tools if n == forced), tools[0])
        return _Reply("", [(f"call_{digest[:24]}", name, json.dumps(_arguments_for(schema, prompt_text)))], False)
    if tool_results:
        text = "Tool said: " + " | ".join(tool_results)
    else:
        text = deterministic_answer(prompt_text, json_mode=json_mode, max_tokens=max_tokens)
    if images and not json_mode:
        text = f"I see {images} image(s). {text}"
    stopped = False
    for sequence in [stop] if isinstance(stop, str) else stop or ():
        if sequence and sequence in text:
            text, stopped = text[: text.index(sequence)], True
    return _Reply(text, [], stopped)


def _openai_parts(messages) -> tuple[int, list[str]]:
    """The images of an OpenAI conversation, and the tool results that end it."""
    images = sum(
        1
        for m in messages
        if isinstance(m, dict) and isinstance(m.get("content"), list)
        for part in m["content"]
        if isinstance(part, dict) and part.get("type") == "image_url"
    )
    results = []
    for message in reversed(messages):
        if not isinstance(message, dict) or message.get("role") != "tool":
            break
        results.insert(0, _content_text(message.get("content")))
    return images, results


def openai_answer(body: dict) -> tuple[str, dict]:
    """The answer to an OpenAI chat-completions request body, and its ``usage`` (the cached part
    of the prompt in whole 128-token blocks, from 1,024 tokens on)."""
    reply, usage = openai_reply(body)
    return reply.text, usage


def openai_reply(body: dict) -> tuple[_Reply, dict]:
    prompt_text = "\n".join(_content_text(m.get("content")) for m in body["messages"] if isinstance(m, dict))
    json_mode = (body.get("response_format") or {}).get("type") in ("json_object", "json_schema")
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens") or 1024
    images, results = _openai_parts(body["messages"])
    tools = [
        ((t.get("function") or {}).get("name", ""), (t.get("function") or {}).get("parameters"))
        for t in body.get("tools") or ()
    ]
    choice = body.get("tool_choice")
    forced = (
        choice
        if choice == "none"
        else ((choice or {}).get("function") or {}).get("name")
        if isinstance(choice, dict)
        else None
    )
    reply = _reply(
        prompt_text=prompt_text, json_mode=json_mode, max_tokens=max_tokens, tool_results=results, images=images,
        tools=tools, forced=forced, stop=body.get("stop"),
    )  # fmt: skip
    answer = reply.text + "".join(arguments for _, _, arguments in reply.calls)
    if tools:
        prompt_text += json.dumps(body.get("tools"))
    prompt_tokens = estimate_tokens(prompt_text)
    cached = (prompt_tokens // _CACHE_BLOCK) * _CACHE_BLOCK if prompt_tokens >= _CACHE_MIN else 0
    completion_tokens = estimate_tokens(answer)
    usage = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": cached},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }
    return reply, usage


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without TCP_NODELAY, Nagle's algorithm and the
    # client's delayed ACK add ~40 ms to every keep-alive answer.
    disable_nagle_algorithm = True
    server: "_Server"

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        if self.server.verbose:
            super().log_message(format, *args)

    # -- plumbing ---------------------------------------------------------------------------

    def _send_json(self, status: int, body: dict, headers: dict | None = None) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def _start_stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

    def _send_event(self, data: dict | str, event: str | None = None) -> None:
        text = data if isinstance(data, str) else json.dumps(data)
        chunk = (f"event: {event}\n" if event else "") + f"data: {text}\n\n"
        try:
            self.wfile.write(chunk.encode())
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.server.count_cut_stream()
            raise

    def _piece_pause(self) -> None:
        """Between two pieces of a stream: the interval ``set_stream_interval`` chose."""
        if self.server.stream_interval_seconds:
            time.sleep(self.server.stream_interval_seconds)

    def _read_json(self) -> dict | None:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    def _api_key(self) -> str:
        key = self.headers.get("x-api-key") or ""
        auth = self.headers.get("Authorization") or ""
        if auth.lower().startswith("bearer "):
            key = auth[7:].strip()
        return key

    def _injected_failure(self, key: str, *, anthropic: bool) -> bool:
        """Answer the failure the key asks for; True when the request is done."""
        mode = self.server.failure_for(key)
        if mode is None:
            return False
        if mode == "hang":
            self.server.stopping.wait(self.server.hang_seconds)
            self.close_connection = True
            return True
        status, retry_after = mode
        kinds = {
            429: ("rate_limit_error", "rate_limit_exceeded", "Rate limit reached for requests"),
            500: ("api_error", "server_error", "The server had an error while processing your request."),
            529: ("overloaded_error", "overloaded", "Overloaded"),
            401: ("authentication_error", "invalid_api_key", "Incorrect API key provided."),
            403: ("permission_error", "forbidden", "This key may not use this model."),
            400: ("invalid_request_error", "invalid_request", "Invalid request."),
        }
        error_type, code, message = kinds[status]
        headers = {"Retry-After": str(retry_after)} if status == 429 else {}
        if anthropic:
            body = {"type": "error", "error": {"type": error_type, "message": message}}
        else:
            body = {"error": {"message": message, "type": error_type, "param": None, "code": code}}
        self._send_json(status, body, headers)
        return True

    def _unauthorized(self, anthropic: bool) -> None:
        if anthropic:
            body = {"type": "error", "error": {"type": "authentication_error", "message": "x-api-key header missing"}}
        else:
            body = {
                "error": {"message": "Missing API key.", "type": "invalid_request_error", "code": "invalid_api_key"}
            }
        self._send_json(401, body)

    def _bad_request(self, message: str, anthropic: bool) -> None:
        if anthropic:
            body = {"type": "error", "error": {"type": "invalid_request_error", "message": message}}
        else:
            body = {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}}
        self._send_json(400, body)

    # -- routes -----------------------------------------------------------------------------

    def do_GET(self):  # noqa: N802 - http.server's naming
        path = self.path.split("?", 1)[0].rstrip("/")
        if path.endswith("/models"):
            key = self._api_key()
            if not key:
                return self._unauthorized(anthropic=False)
            self.server.count(key)
            if self._injected_failure(key, anthropic="x-api-key" in self.headers):
                return None
            data = [
                {"id": name, "object": "model", "created": 1700000000, "owned_by": "celaest-fake",
                 "type": "model", "display_name": name, "created_at": "2024-01-01T00:00:00Z"}
                for name in MODELS
            ]  # fmt: skip
            return self._send_json(200, {"object": "list", "data": data, "has_more": False})
        return self._send_json(404, {"error": {"message": "Not found", "type": "not_found"}})

    def do_POST(self):  # noqa: N802
        path = self.path.split("?", 1)[0].rstrip("/")
        if path.endswith("/chat/completions"):
            return self._openai_chat()
        if path.endswith("/messages"):
            return self._anthropic_messages()
        if path.endswith("/embeddings"):
            return self._openai_embeddings()
        self._read_json()
        return self._send_json(404, {"error": {"message": "Not found", "type": "not_found"}})

    def _common(self, *, anthropic: bool) -> tuple[str, dict] | None:
        body = self._read_json()
        key = self._api_key()
        if not key:
            self._unauthorized(anthropic)
            return None
        self.server.count(key)
        if self._injected_failure(key, anthropic=anthropic):
            return None
        if body is None or not isinstance(body.get("messages"), list) or not body.get("model"):
            self._bad_request("`model` and `messages` are required.", anthropic)
            return None
        self.server.bodies.append(body)
        if self.server.latency_seconds:
            time.sleep(self.server.latency_seconds)
        return key, body

    def _openai_chat(self):
        started = self._common(anthropic=False)
        if started is None:
            return
        _key, body = started
        reply, usage = openai_reply(body)
        answer = reply.text
        calls = [
            {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
            for call_id, name, arguments in reply.calls
        ]
        finish = "tool_calls" if calls else "stop"
        ident = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        created = int(time.time())
        model = body["model"]
        if not body.get("stream"):
            message = {"role": "assistant", "content": answer if not calls else None, "refusal": None}
            if calls:
                message["tool_calls"] = calls
            return self._send_json(
                200,
                {
                    "id": ident,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "message": message,
                            "finish_reason": finish,
                            "logprobs": None,
                        }
                    ],
                    "usage": usage,
                    "system_fingerprint": "fp_celaest_fake",
                },
            )
        self._start_stream()
        base = {"id": ident, "object": "chat.completion.chunk", "created": created, "model": model}
        self._send_event({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]})
        for piece in re.findall(r"\S+\s*", answer):
            self._piece_pause()
            self._send_event({**base, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]})
        for index, call in enumerate(calls):
            arguments = call["function"]["arguments"]
            opening = {**call, "index": index, "function": {"name": call["function"]["name"], "arguments": ""}}
            self._send_event({**base, "choices": [{"index": 0, "delta": {"tool_calls": [opening]}}]})
            for piece in (arguments[: len(arguments) // 2], arguments[len(arguments) // 2 :]):
                self._piece_pause()
                delta = {"tool_calls": [{"index": index, "function": {"arguments": piece}}]}
                self._send_event({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
        self._send_event({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
        if (body.get("stream_options") or {}).get("include_usage"):
            self._send_event({**base, "choices": [], "usage": usage})
        self._send_event("[DONE]")

    def _openai_embeddings(self):
        body = self._read_json()
        key = self._api_key()
        if not key:
            return self._unauthorized(False)
        self.server.count(key)
        if self._injected_failure(key, anthropic=False):
            return None
        inputs = (body or {}).get("input")
        inputs = (
            [inputs]
            if isinstance(inputs, str) or (isinstance(inputs, list) and inputs and isinstance(inputs[0], int))
            else inputs
        )
        if not body or not body.get("model") or not isinstance(inputs, list) or not inputs:
            return self._bad_request("`model` and `input` are required.", False)
        self.server.bodies.append(body)
        dimensions = body.get("dimensions") or 8
        data, tokens = [], 0
        for n, item in enumerate(inputs):
            text = item if isinstance(item, str) else " ".join(map(str, item))
            tokens += estimate_tokens(text) if isinstance(item, str) else len(item)
            vector = embedding_vector(text, dimensions)
            if body.get("encoding_format") == "base64":
                vector = base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode()
            data.append({"object": "embedding", "index": n, "embedding": vector})
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        self._send_json(200, {"object": "list", "data": data, "model": body["model"], "usage": usage})

    def _anthropic_messages(self):
        started = self._common(anthropic=True)
        if started is None:
            return
        _key, body = started
        system = body.get("system") or ""
        system_text = system if isinstance(system, str) else _content_text(system)
        texts = [system_text] + [_content_text(m.get("content")) for m in body["messages"] if isinstance(m, dict)]
        prompt_text = "\n".join(text for text in texts if text)
        problem = _anthropic_problem(body)
        if problem:
            return self._bad_request(problem, True)
        output_format = (body.get("output_config") or {}).get("format") or {}
        json_mode = "json" in system_text.lower() or output_format.get("type") == "json_schema"
        images, results = _anthropic_parts(body["messages"])
        tools = [(t.get("name", ""), t.get("input_schema")) for t in body.get("tools") or ()]
        choice = body.get("tool_choice") or {}
        forced = "none" if choice.get("type") == "none" else choice.get("name")
        reply = _reply(
            prompt_text=prompt_text, json_mode=json_mode, max_tokens=body.get("max_tokens") or 1024,
            tool_results=results, images=images, tools=tools, forced=forced, stop=body.get("stop_sequences"),
        )  # fmt: skip
        answer = reply.text
        if tools:
            prompt_text += json.dumps(body.get("tools"))
        prompt_tokens = estimate_tokens(prompt_text)
        cached = (prompt_tokens // _CACHE_BLOCK) * _CACHE_BLOCK if prompt_tokens >= _CACHE_MIN else 0
        usage = {
            # Anthropic counts the cache reads apart from the (uncached) input tokens.
            "input_tokens": prompt_tokens - cached,
            "cache_read_input_tokens": cached,
            "cache_creation_input_tokens": 0,
            "output_tokens": estimate_tokens(answer + "".join(arguments for _, _, arguments in reply.calls)),
        }
        ident = f"msg_{uuid.uuid4().hex[:24]}"
        content = [{"type": "text", "text": answer}] if answer or not reply.calls else []
        content += [
            {"type": "tool_use", "id": "toolu" + call_id[4:], "name": name, "input": json.loads(arguments)}
            for call_id, name, arguments in reply.calls
        ]
        stop_reason = "tool_use" if reply.calls else "stop_sequence" if reply.stopped else "end_turn"
        message = {
            "id": ident,
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": usage,
        }
        if not body.get("stream"):
            return self._send_json(200, message)
        self._start_stream()
        start_usage = {**usage, "output_tokens": 1}
        self._send_event(
            {"type": "message_start", "message": {**message, "content": [], "stop_reason": None, "usage": start_usage}},
            "message_start",
        )
        self._send_event({"type": "ping"}, "ping")
        for index, block in enumerate(content):
            self._anthropic_block(index, block)
        self._send_event(
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                "usage": {"output_tokens": usage["output_tokens"]},
            },
            "message_delta",
        )
        self._send_event({"type": "message_stop"}, "message_stop")

    def _anthropic_block(self, index: int, block: dict) -> None:
        """One content block of a stream: text in word pieces, a tool call's input in two."""
        if block["type"] == "text":
            opening, pieces = {"type": "text", "text": ""}, re.findall(r"\S+\s*", block["text"])
            deltas = [{"type": "text_delta", "text": piece} for piece in pieces]
        else:
            opening = {**block, "input": {}}
            arguments = json.dumps(block["input"])
            halves = (arguments[: len(arguments) // 2], arguments[len(arguments) // 2 :])
            deltas = [{"type": "input_json_delta", "partial_json": half} for half in halves]
        self._send_event(
            {"type": "content_block_start", "index": index, "content_block": opening}, "content_block_start"
        )
        for delta in deltas:
            self._piece_pause()
            self._send_event({"type": "content_block_delta", "index": index, "delta": delta}, "content_block_delta")
        self._send_event({"type": "content_block_stop", "index": index}, "content_block_stop")


def _anthropic_parts(messages) -> tuple[int, list[str]]:
    """The images of an Anthropic conversation, and the tool results of its last message."""
    blocks = [
        block
        for m in messages
        if isinstance(m, dict) and isinstance(m.get("content"), list)
        for block in m["content"]
        if isinstance(block, dict)
    ]
    images = sum(1 for block in blocks if block.get("type") == "image")
    last = messages[-1] if messages and isinstance(messages[-1], dict) else {}
    last_blocks = last.get("content") if isinstance(last.get("content"), list) else []
    results = [
        _content_text(block.get("content"))
        for block in last_blocks
        if isinstance(block, dict) and block.get("type") == "tool_result"
    ]
    return images, results


def _anthropic_problem(body: dict) -> str | None:
    """What Anthropic would refuse in these messages (as its API does), else None."""
    for n, message in enumerate(body["messages"]):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            return f"messages.{n}.role: Input should be 'user' or 'assistant'"
        content = message.get("content")
        for block in content if isinstance(content, list) else ():
            kind = block.get("type") if isinstance(block, dict) else None
            source = block.get("source") or {} if kind == "image" else {}
            if kind == "image" and not (
                (source.get("type") == "base64" and source.get("media_type") and source.get("data"))
                or (source.get("type") == "url" and source.get("url"))
            ):
                return f"messages.{n}.content: invalid image source"
            if kind == "tool_use" and not isinstance(block.get("input"), dict):
                return f"messages.{n}.content: tool_use.input must be an object"
            if kind not in ("text", "image", "tool_use", "tool_result"):
                return f"messages.{n}.content: unknown block type {kind!r}"
    for tool in body.get("tools") or ():
        if not isinstance(tool, dict) or not tool.get("name") or not isinstance(tool.get("input_schema"), dict):
            return "tools: each tool needs a name and an input_schema"
    return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Benchmarks open many keep-alive connections at once.
    request_queue_size = 1024

    def __init__(self, address, *, latency_ms: int, hang_seconds: float, verbose: bool):
        super().__init__(address, _Handler)
        self.latency_seconds = latency_ms / 1000
        self.hang_seconds = hang_seconds
        self.verbose = verbose
        self.stopping = threading.Event()
        self.hits: Counter = Counter()
        self.overrides: dict[str, str | None] = {}
        self.stream_interval_seconds = 0.0
        #: streams whose client closed the connection before the last event
        self.cut_streams = 0
        #: the last request bodies taken (tests read what reached the provider)
        self.bodies: deque = deque(maxlen=50)
        self._lock = threading.Lock()

    def handle_error(self, request, client_address) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, BrokenPipeError | ConnectionResetError):
            return  # a client that went away mid-stream (counted in cut_streams)
        super().handle_error(request, client_address)

    def count_cut_stream(self) -> None:
        with self._lock:
            self.cut_streams += 1

    def count(self, key: str) -> None:
        with self._lock:
            self.hits[key] += 1

    def failure_for(self, key: str):
        mode = self.overrides.get(key, key)
        if not mode:
            return None
        match = _FAILURE_PATTERN.search(mode)
        if match is None:
            return None
        if match.group(3):
            return "hang"
        return int(match.group(1)), int(match.group(2) or 1)


class FakeProvider:
    """The server, startable in a background thread (tests, benchmarks) or in the foreground."""

    def __init__(self, *, host="127.0.0.1", port=0, latency_ms=0, hang_seconds=30.0, verbose=False):
        self.httpd = _Server((host, port), latency_ms=latency_ms, hang_seconds=hang_seconds, verbose=verbose)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def hits(self) -> Counter:
        return self.httpd.hits

    def set_failure(self, key: str, mode: str | None) -> None:
        """Make ``key`` behave as ``mode`` (e.g. ``"fail-429-r2"``, ``"hang"``), or normally (``""``)."""
        self.httpd.overrides[key] = mode or ""

    def clear_failure(self, key: str) -> None:
        self.httpd.overrides.pop(key, None)

    def set_latency(self, milliseconds: int) -> None:
        self.httpd.latency_seconds = milliseconds / 1000

    def set_stream_interval(self, milliseconds: int) -> None:
        """Pause this long between two pieces of a streamed answer."""
        self.httpd.stream_interval_seconds = milliseconds / 1000

    @property
    def bodies(self) -> deque:
        """The last request bodies taken, oldest first."""
        return self.httpd.bodies

    @property
    def cut_streams(self) -> int:
        """How many streams the client closed before their last event."""
        return self.httpd.cut_streams

    def start(self) -> "FakeProvider":
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="fake-provider", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def stop(self) -> None:
        self.httpd.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()
