"""The load generator of ``gateway_bench.py``: one asyncio process, the official ``AsyncOpenAI``.

It runs in a virtualenv of its own (``/work/bench-client-venv``: ``openai[aiohttp]`` and
``uvloop``), because ``httpx``'s asyncio connection pool is what limits it otherwise: at 50
concurrent requests the SDK on its default ``httpx`` client spends ~8 ms of CPU per request and
tops out near 120 req/s, on the ``aiohttp`` transport (``openai.DefaultAioHttpClient``) 1.2-1.6 ms
and 500-650 req/s, as cheap as 50 threads of the synchronous client (1.5 ms), with no thread per
connection, so it also carries 1,000 open streams.

Protocol with the driver: it warms up (``--warmup`` requests, or streams, at the same
concurrency, opening the connections), prints ``READY``, waits for a line on stdin, runs the measured requests, and
prints one line of JSON with the figures. With ``--stream`` every request is a stream read to its
end; ``--rss-root PID`` then samples the resident memory of that process and its descendants
(idle, just before the streams start, then every 0.5 s while they run).
"""

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

MESSAGES = [{"role": "user", "content": "Summarize the benchmark in one sentence."}]


def tree_rss_kb(root: int) -> int:
    """Resident set size (kB) of ``root`` and all its descendants."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        pid = int(entry.name)
        children.setdefault(int(fields["PPid"].strip()), []).append(pid)
        rss[pid] = int(fields.get("VmRSS", "0 kB").split()[0])
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo.extend(children.get(pid, ()))
    return total


def cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


async def run(args) -> None:
    import httpx2
    import openai

    limits = httpx2.Limits(max_connections=args.concurrency + 16, max_keepalive_connections=args.concurrency + 16)
    client = openai.AsyncOpenAI(
        api_key=args.api_key,
        base_url=args.base_url,
        max_retries=0,
        timeout=args.timeout,
        http_client=openai.DefaultAioHttpClient(limits=limits, timeout=args.timeout),
    )
    latencies: list[float] = []
    errors: Counter = Counter()
    state = {"open": 0, "done": 0, "first_byte": []}
    semaphore = asyncio.Semaphore(args.concurrency)

    async def complete() -> None:
        await client.chat.completions.create(model=args.model, messages=MESSAGES, max_tokens=64)

    async def stream() -> None:
        started = time.perf_counter()
        response = await client.chat.completions.create(
            model=args.model, messages=MESSAGES, max_tokens=64, stream=True, stream_options={"include_usage": True}
        )
        state["open"] += 1
        try:
            finished, first = False, True
            async for chunk in response:
                if first:
                    state["first_byte"].append((time.perf_counter() - started) * 1000)
                    first = False
                if chunk.choices and chunk.choices[0].finish_reason == "stop":
                    finished = True
            if not finished:
                raise RuntimeError("stream ended without finish_reason")
        finally:
            state["open"] -= 1

    async def one(call) -> None:
        async with semaphore:
            started = time.perf_counter()
            try:
                await call()
            except Exception as exc:  # noqa: BLE001 - counted and reported
                errors[type(exc).__name__] += 1
                return
            latencies.append((time.perf_counter() - started) * 1000)

    await asyncio.gather(*(one(stream if args.stream else complete) for _ in range(args.warmup)))
    warmup_errors = sum(errors.values())
    latencies.clear()
    errors.clear()
    print("READY", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)

    samples: list[tuple[int, int]] = []
    idle_rss = tree_rss_kb(args.rss_root) if args.rss_root else None

    async def sample() -> None:
        while True:
            await asyncio.sleep(0.5)
            samples.append((state["open"], tree_rss_kb(args.rss_root)))

    sampler = asyncio.create_task(sample()) if args.rss_root else None
    cpu_before = cpu_seconds()
    started = time.perf_counter()
    await asyncio.gather(*(one(stream if args.stream else complete) for _ in range(args.total)))
    elapsed = time.perf_counter() - started
    cpu = cpu_seconds() - cpu_before
    if sampler:
        sampler.cancel()
    await client.close()
    latencies.sort()
    result = {
        "requests": len(latencies),
        "errors": sum(errors.values()),
        "error_kinds": dict(errors),
        "warmup_errors": warmup_errors,
        "elapsed": elapsed,
        "rps": len(latencies) / elapsed,
        "p50": statistics.median(latencies) if latencies else None,
        "p99": latencies[max(int(len(latencies) * 0.99) - 1, 0)] if latencies else None,
        "max": latencies[-1] if latencies else None,
        "client_cpu_ms": cpu * 1000 / max(args.total, 1),
    }
    if args.stream:
        first = sorted(state["first_byte"])
        result["first_chunk_p50"] = statistics.median(first) if first else None
        result["first_chunk_p99"] = first[max(int(len(first) * 0.99) - 1, 0)] if first else None
    if args.rss_root:
        # The plateau: the samples taken while at least 95% of the streams were open.
        plateau = [rss for open_, rss in samples if open_ >= 0.95 * args.total]
        result["idle_rss_kb"] = idle_rss
        result["max_open"] = max((open_ for open_, _ in samples), default=0)
        result["plateau_samples"] = len(plateau)
        result["plateau_rss_kb"] = statistics.median(plateau) if plateau else None
        result["peak_rss_kb"] = max((rss for _, rss in samples), default=None)
    print(json.dumps(result), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--model", default="gpt-4o-mini")
    parser.add_argument("--total", type=int, required=True)
    parser.add_argument("--concurrency", type=int, required=True)
    parser.add_argument("--warmup", type=int, default=0)
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--rss-root", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        asyncio.run(run(args))
    else:
        uvloop.run(run(args))


if __name__ == "__main__":
    main()
