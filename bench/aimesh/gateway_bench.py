"""Gateway overhead benchmark: /v1/chat/completions next to the provider called directly.

The local fake provider answers every request in a fixed latency (50 ms by default). The same
official ``openai`` client, with N concurrent threads (50 by default), first calls the fake
provider directly, then CELAEST's gateway (gunicorn, gthread) which authenticates the API key,
meters the license, routes through the key pool, calls the same fake provider and records the
task. The difference of the medians is the gateway's overhead per request.

Run it against a PostgreSQL and Redis of its own (the database is created and migrated):

    DATABASE_URL=postgres://postgres@127.0.0.1:55432/celaest_bench REDIS_URL=redis://127.0.0.1:56379/9 \\
        python bench/aimesh/gateway_bench.py [--requests 3000] [--concurrency 50] [--latency-ms 50]

Optionally ``--litellm`` also measures a LiteLLM proxy on the same fake provider (when the
``litellm`` proxy is installed, e.g. ``--litellm /path/to/litellm-venv/bin/litellm``).
"""

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from cpu import cpu_by_group, cpu_ms_per_request  # noqa: E402 - bench/ is not a package

#: process groups whose CPU each measured request costs; "self" is this script (the client)
GROUPS = ("fake_provider", "gunicorn", "litellm", "postgres", "redis", "self")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "celaest.settings")
os.environ.setdefault("DEBUG", "false")
os.environ.setdefault("LOG_LEVEL", "WARNING")  # the SDK logs every HTTP request at INFO
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-" + "x" * 40)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port}")


def wait_ready(url: str, timeout: float = 60.0) -> None:
    """Wait until ``url`` answers 200, then a little more: the port opens before the server's
    processes have loaded Django, and their start would be counted as the first measurement's CPU."""
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5):  # noqa: S310 - a local URL
                break
        except OSError:
            time.sleep(0.2)
    time.sleep(3.0)


def ensure_database(url: str) -> None:
    import psycopg

    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    admin = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def prepare(provider_url: str) -> str:
    """Migrate and seed: one model, four pooled keys on the fake provider, an unlimited license
    and a user API key. Returns the raw API key."""
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from aimesh.models import AIApiKey, AIModel
    from celaest import crypto
    from identity.models import Organization, User
    from licensing.models import License, SubscriptionPlan
    from settings_app.services.api_keys import api_key_create

    model, _ = AIModel.objects.get_or_create(
        provider="openai",
        model_id="gpt-4o-mini",
        defaults={"display_name": "GPT-4o mini", "capabilities": ["chat", "json"], "is_default": True},
    )
    for index in range(4):
        AIApiKey.objects.update_or_create(
            provider="openai",
            key_name=f"bench-{index}",
            defaults={
                "key_encrypted": crypto.encrypt(f"sk-bench-{index}"),
                "key_hint": str(index),
                "base_url": provider_url,
                "rate_limit_rpm": 1_000_000,
                "is_healthy": True,
                "cooldown_until": None,
                "consecutive_failures": 0,
            },
        )
    plan, _ = SubscriptionPlan.objects.get_or_create(
        code="bench-unlimited", defaults={"name": "Bench", "limits": {"ai_requests_per_month": None}}
    )
    organization, _ = Organization.objects.get_or_create(slug="bench-org", defaults={"name": "Bench"})
    License.objects.get_or_create(
        organization=organization, plan=plan, defaults={"license_key": "CEL-BENCH-" + os.urandom(8).hex().upper()}
    )
    user, created = User.objects.get_or_create(
        email="bench@example.com", defaults={"organization": organization, "role": "owner"}
    )
    return api_key_create(user=user, name="bench", scopes=["*"], rate_limit_rpm=10_000_000).raw_key


def measure(base_url: str, api_key: str, model: str, total: int, concurrency: int) -> dict:
    import openai

    client = openai.OpenAI(api_key=api_key, base_url=base_url, max_retries=0, timeout=30)
    messages = [{"role": "user", "content": "Summarize the benchmark in one sentence."}]
    latencies: list[float] = []
    errors = []
    lock = threading.Lock()

    def one(_):
        started = time.perf_counter()
        try:
            client.chat.completions.create(model=model, messages=messages, max_tokens=64)
        except Exception as exc:  # noqa: BLE001 - counted and reported
            with lock:
                errors.append(type(exc).__name__)
            return
        with lock:
            latencies.append((time.perf_counter() - started) * 1000)

    with ThreadPoolExecutor(max_workers=concurrency) as pool:  # warm-up: connections, caches
        list(pool.map(one, range(concurrency * 2)))
    latencies.clear()
    errors.clear()
    cpu_before = cpu_by_group(GROUPS)
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(one, range(total)))
    elapsed = time.perf_counter() - started
    cpu = cpu_ms_per_request(cpu_before, cpu_by_group(GROUPS), total)
    latencies.sort()
    return {
        "cpu_ms": {name: ms for name, ms in cpu.items() if ms >= 0.05},
        "requests": len(latencies),
        "errors": len(errors),
        "rps": len(latencies) / elapsed,
        "p50": statistics.median(latencies) if latencies else float("nan"),
        "p99": latencies[int(len(latencies) * 0.99) - 1] if latencies else float("nan"),
    }


def report(name: str, figures: dict) -> None:
    print(
        f"{name:<32} {figures['requests']:>6} ok {figures['errors']:>4} err "
        f"{figures['rps']:>8.1f} req/s  p50 {figures['p50']:>7.1f} ms  p99 {figures['p99']:>7.1f} ms"
    )
    print("    CPU ms/request: " + ", ".join(f"{name} {ms:.2f}" for name, ms in figures["cpu_ms"].items()))


def start(command: list[str], env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True
    )


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--single-requests", type=int, default=200, help="requests made by a single client")
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (one per core)")
    parser.add_argument("--threads", type=int, default=8, help="threads per gunicorn worker (gthread)")
    parser.add_argument("--worker-class", default="gthread", help="gunicorn worker class (gthread, gevent)")
    parser.add_argument(
        "--worker-connections",
        type=int,
        default=1000,
        help="connections a gunicorn worker holds at most (gunicorn's default: 1000); the clients' "
        "connections divided by the workers spreads them evenly instead of to whichever accepts first",
    )
    parser.add_argument(
        "--litellm",
        nargs="?",
        const="litellm",
        metavar="LITELLM",
        help="also measure a LiteLLM proxy, started with this litellm command (e.g. from its own virtualenv)",
    )
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        sys.exit("Set DATABASE_URL to a PostgreSQL database for the benchmark (and REDIS_URL).")
    ensure_database(os.environ["DATABASE_URL"])

    logs = Path(tempfile.mkdtemp(prefix="celaest-bench-"))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    python = sys.executable
    provider_port, gateway_port = free_port(), free_port()
    processes = []
    try:
        processes.append(
            start(
                [
                    python,
                    "manage.py",
                    "fake_provider",
                    "--port",
                    str(provider_port),
                    "--latency-ms",
                    str(args.latency_ms),
                ],
                env,
                logs / "provider.log",
            )
        )
        wait_for(provider_port)
        provider_url = f"http://127.0.0.1:{provider_port}"
        api_key = prepare(provider_url)
        processes.append(
            start(
                [
                    python,
                    "-m",
                    "gunicorn",
                    "celaest.wsgi",
                    "-b",
                    f"127.0.0.1:{gateway_port}",
                    "-k",
                    args.worker_class,
                    "-w",
                    str(args.workers),
                    "--threads",
                    str(args.threads),
                    "--worker-connections",
                    str(args.worker_connections),
                    "--keep-alive",
                    "30",
                    "--log-level",
                    "warning",
                ],  # fmt: skip
                env,
                logs / "gunicorn.log",
            )
        )
        wait_for(gateway_port)
        wait_ready(f"http://127.0.0.1:{gateway_port}/health/live")
        print(
            f"{os.cpu_count()} cores, {args.concurrency} concurrent clients, {args.requests} requests each, "
            f"provider latency {args.latency_ms} ms, gunicorn {args.workers}x{args.threads} {args.worker_class}, "
            f"{args.worker_connections} connections per worker at most"
        )
        direct = compare(args, "direct to provider", f"{provider_url}/v1", "sk-bench-direct", None)
        compare(args, "CELAEST gateway", f"http://127.0.0.1:{gateway_port}/v1", api_key, direct)
        if args.litellm:
            litellm_run(args, provider_url, env, logs, processes, direct)
    finally:
        for process in reversed(processes):
            stop(process)
    print(f"logs: {logs}")


def litellm_run(args, provider_url, env, logs, processes, direct) -> None:
    config = logs / "litellm.yaml"
    config.write_text(
        "model_list:\n"
        "  - model_name: gpt-4o-mini\n"
        "    litellm_params:\n"
        "      model: openai/gpt-4o-mini\n"
        f"      api_base: {provider_url}/v1\n"
        "      api_key: sk-bench-litellm\n"
        "general_settings:\n"
        "  master_key: sk-bench-litellm-master\n"
    )
    port = free_port()
    command = [
        args.litellm,
        "--config",
        str(config),
        "--port",
        str(port),
        "--num_workers",
        str(args.workers),
    ]
    # Offline: LiteLLM would otherwise fetch its model price map from the internet at start.
    # Without DATABASE_URL: LiteLLM would take it for its own (Prisma) spend-tracking database.
    env = {k: v for k, v in env.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    processes.append(start(command, env, logs / "litellm.log"))
    wait_for(port, timeout=120)
    compare(args, "LiteLLM proxy", f"http://127.0.0.1:{port}/v1", "sk-bench-litellm-master", direct)


def compare(args, name: str, base_url: str, api_key: str, direct: dict | None) -> dict:
    """Measure ``base_url`` at the benchmark's concurrency and with a single client; with
    ``direct`` (the provider's own figures), print the overhead per request in both cases.
    One client shows what a request costs by itself; 50 add the queueing of a saturated box."""
    figures = {
        "loaded": measure(base_url, api_key, "gpt-4o-mini", args.requests, args.concurrency),
        "single": measure(base_url, api_key, "gpt-4o-mini", args.single_requests, 1),
    }
    for load, label in (("loaded", f"{args.concurrency} clients"), ("single", "1 client")):
        report(f"{name}, {label}", figures[load])
        if direct is not None:
            print(
                f"    overhead p50 {figures[load]['p50'] - direct[load]['p50']:.1f} ms, "
                f"p99 {figures[load]['p99'] - direct[load]['p99']:.1f} ms"
            )
    return figures


if __name__ == "__main__":
    main()
