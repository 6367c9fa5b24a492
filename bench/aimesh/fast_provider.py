"""A benchmark-only fake OpenAI provider on one asyncio event loop (uvloop when installed).

``aimesh/fake_provider.py`` holds a thread per connection and sends a stream's pieces all at
once after its latency; at 1,000 concurrent streams, or at 600 requests/s, the provider itself
would be what is measured. This one speaks the same protocol for what the gateway benchmark
uses (``POST /v1/chat/completions``, plain or ``stream`` as server-sent events with usage in a
final chunk when ``stream_options.include_usage``, and ``GET /v1/models``) with the same answers
and usage (it reuses ``deterministic_answer`` and ``estimate_tokens``), and adds:

- ``stream_seconds``: a stream's pieces are spread over that many seconds (after the latency);
- ``POST /_bench/config`` ``{"latency_ms": 2000, "stream_seconds": 10}`` changes both at run
  time, so one provider (and one LiteLLM, one gateway) serves every regime of a run;
- ``GET /_bench/stats``: requests served and streams open now.

No failure injection: tests use the real fake provider.

    python bench/aimesh/fast_provider.py --port 8199 [--latency-ms 50] [--stream-seconds 0]
"""

import argparse
import asyncio
import json
import re
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from aimesh.fake_provider import MODELS, openai_answer  # noqa: E402 - the repository root is put on the path first

_PIECES = re.compile(r"\S+\s*")
_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found"}


class State:
    def __init__(self, latency_ms: int, stream_seconds: float):
        self.latency = latency_ms / 1000
        self.stream_seconds = stream_seconds
        self.requests = 0
        self.streams_open = 0


def _response(status: int, body: dict) -> bytes:
    payload = json.dumps(body).encode()
    head = (
        f"HTTP/1.1 {status} {_REASONS.get(status, 'OK')}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n"
    )
    return head.encode() + payload


def _event(data) -> bytes:
    return b"data: " + (data if isinstance(data, bytes) else json.dumps(data).encode()) + b"\n\n"


def _chat(body: dict) -> tuple[dict, str, dict]:
    answer, usage = openai_answer(body)
    base = {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "created": int(time.time()),
        "model": body["model"],
    }
    return base, answer, usage


async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, state: State) -> None:
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                return
            lines = head.decode("latin-1").split("\r\n")
            method, target = lines[0].split(" ", 2)[:2]
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    name, value = line.split(":", 1)
                    headers[name.strip().lower()] = value.strip()
            raw = await reader.readexactly(int(headers.get("content-length") or 0))
            path = target.split("?", 1)[0].rstrip("/")
            keep_alive = headers.get("connection", "").lower() != "close"
            if path == "/_bench/config" and method == "POST":
                config = json.loads(raw or b"{}")
                if "latency_ms" in config:
                    state.latency = config["latency_ms"] / 1000
                if "stream_seconds" in config:
                    state.stream_seconds = float(config["stream_seconds"])
                writer.write(
                    _response(200, {"latency_ms": state.latency * 1000, "stream_seconds": state.stream_seconds})
                )
            elif path == "/_bench/stats":
                writer.write(_response(200, {"requests": state.requests, "streams_open": state.streams_open}))
            elif method == "GET" and path.endswith("/models"):
                data = [
                    {"id": name, "object": "model", "created": 1700000000, "owned_by": "celaest-fake"}
                    for name in MODELS
                ]
                writer.write(_response(200, {"object": "list", "data": data}))
            elif method == "POST" and path.endswith("/chat/completions"):
                auth = headers.get("authorization", "")
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = None
                if not auth.lower().startswith("bearer "):
                    writer.write(_response(401, {"error": {"message": "Missing API key.", "code": "invalid_api_key"}}))
                elif not isinstance(body, dict) or not isinstance(body.get("messages"), list) or not body.get("model"):
                    writer.write(_response(400, {"error": {"message": "`model` and `messages` are required."}}))
                else:
                    state.requests += 1
                    if state.latency:
                        await asyncio.sleep(state.latency)
                    base, answer, usage = _chat(body)
                    if not body.get("stream"):
                        message = {"role": "assistant", "content": answer, "refusal": None}
                        choice = {"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}
                        completion = {**base, "object": "chat.completion", "choices": [choice], "usage": usage}
                        writer.write(_response(200, {**completion, "system_fingerprint": "fp_celaest_fake"}))
                    else:
                        await _stream(writer, state, body, base, answer, usage)
                        return  # a stream ends its connection, as the real fake provider's does
            else:
                writer.write(_response(404, {"error": {"message": "Not found", "type": "not_found"}}))
            await writer.drain()
            if not keep_alive:
                return
    except (ConnectionError, asyncio.IncompleteReadError):
        return
    finally:
        writer.close()


async def _stream(writer, state: State, body: dict, base: dict, answer: str, usage: dict) -> None:
    state.streams_open += 1
    try:
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
            b"Connection: close\r\n\r\n"
        )
        chunk = {**base, "object": "chat.completion.chunk"}
        writer.write(_event({**chunk, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}))
        await writer.drain()
        pieces = _PIECES.findall(answer)
        pause = state.stream_seconds / max(len(pieces), 1)
        for piece in pieces:
            if pause:
                await asyncio.sleep(pause)
            choice = {"index": 0, "delta": {"content": piece}, "finish_reason": None}
            writer.write(_event({**chunk, "choices": [choice]}))
            await writer.drain()
        writer.write(_event({**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}))
        if (body.get("stream_options") or {}).get("include_usage"):
            writer.write(_event({**chunk, "choices": [], "usage": usage}))
        writer.write(_event(b"[DONE]"))
        await writer.drain()
    finally:
        state.streams_open -= 1


async def serve(host: str, port: int, state: State) -> None:
    server = await asyncio.start_server(lambda r, w: _handle(r, w, state), host, port, backlog=4096)
    print(f"fast fake provider on http://{host}:{port}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8199)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--stream-seconds", type=float, default=0.0)
    args = parser.parse_args()
    main_coroutine = serve(args.host, args.port, State(args.latency_ms, args.stream_seconds))
    try:
        import uvloop
    except ImportError:
        asyncio.run(main_coroutine)
    else:
        uvloop.run(main_coroutine)


if __name__ == "__main__":
    main()
