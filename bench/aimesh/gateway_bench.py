"""AI mesh benchmark (issue 19): the gateway beside LiteLLM and the provider called directly.

One run starts a fake provider, CELAEST (``--server wsgi``: gunicorn gthread 2x8, today's layout;
``--server asgi``: uvicorn 2 workers, uvloop, httptools; ``--server asgi-gunicorn``: gunicorn
with ``uvicorn_worker.UvicornWorker``) and, with ``--litellm``, a LiteLLM proxy (2 workers) on
the same provider, then measures the regimes asked for, each straight at the provider, through
CELAEST and through LiteLLM, one after the other:

  1. 200 concurrent clients, provider latency 2 s, 600 requests;
  2. 50 clients, provider 50 ms, 2000 requests;
  3. 1,000 concurrent streams of 10 s each (the provider spreads a stream's pieces over 10 s):
     errors, and the server's memory per open stream ((RSS of its process tree on the plateau
     - idle RSS) / streams);
  4. a batch of 1,000 inputs through ``POST /api/v1/batches`` run by a Celery worker
     (``-Q ai --concurrency 2``), provider 2 s, the pool's keys at 600 requests/minute in all:
     the time until the batch is finished (CELAEST only: LiteLLM has no equivalent);
  5. one client alone, provider 50 ms, 200 requests: the p50 overhead.

For each: req/s, p50, p99, the p50 overhead over the direct calls, and the CPU per request of
each process group (the server's process tree, the provider, PostgreSQL, Redis, the client).

The provider is ``bench/aimesh/fast_provider.py`` (one asyncio loop, same protocol and answers
as ``aimesh/fake_provider.py``, its latency and stream duration set at run time), and the load
generator ``bench/aimesh/load.py`` (asyncio, ``AsyncOpenAI``); both run under ``--client-python``
(default ``/work/bench-client-venv/bin/python``, see README.md). Run it against a PostgreSQL and
Redis of its own (the database is created and migrated), e.g. ``bench/services.sh start``:

    DATABASE_URL=postgres://postgres@127.0.0.1:55432/celaest_bench REDIS_URL=redis://127.0.0.1:56379/9 \\
        .venv/bin/python bench/aimesh/gateway_bench.py --regimes 1,2,3,5 --server asgi \\
        --litellm /work/litellm-venv/bin/litellm
"""

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from cpu import cpu_by_group  # noqa: E402 - bench/ is not a package

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "celaest.settings")
os.environ.setdefault("DEBUG", "false")
os.environ.setdefault("LOG_LEVEL", "WARNING")  # the SDK logs every HTTP request at INFO
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-" + "x" * 40)

DEFAULT_CLIENT_PYTHON = "/work/bench-client-venv/bin/python"
#: process groups found by command line (bench/cpu.py), when the benchmark's own PostgreSQL and
#: Redis can't be found by pid; otherwise every group is a process tree (other PostgreSQL servers
#: on the machine, a test suite's, would count too)
GROUPS = ("postgres", "redis", "self")
POOL_KEYS = 4
MODEL = "gpt-4o-mini"

#: name -> (concurrency, provider latency ms, default requests, stream)
REGIMES = {
    "1": (200, 2000, 600, False),
    "2": (50, 50, 2000, False),
    "3": (1000, 0, 1000, True),
    "5": (1, 50, 200, False),
}


# -- processes --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(url: str, timeout: float = 120.0, settle: float = 3.0) -> None:
    """Wait until ``url`` answers (any HTTP status), then ``settle`` seconds more: the port opens
    before the server's processes have loaded, and their start would count as measured CPU."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5):  # noqa: S310 - a local URL
                break
        except urllib.error.HTTPError:
            break
        except OSError:
            time.sleep(0.2)
    else:
        raise RuntimeError(f"{url} did not answer in {timeout:.0f} s")
    time.sleep(settle)


def start(command: list[str], env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True
    )


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _proc_table() -> dict[int, tuple[int, float]]:
    """pid -> (parent pid, CPU seconds of the process and of its reaped children)."""
    ticks = os.sysconf("SC_CLK_TCK")
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        table[int(entry.name)] = (int(stat[1]), sum(int(value) for value in stat[11:15]) / ticks)
    return table


def tree_cpu(roots: dict[str, int]) -> dict[str, float]:
    """CPU seconds used so far by each named process tree (a worker that ended and was reaped
    is in its parent's children time)."""
    table = _proc_table()
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in table.items():
        children.setdefault(parent, []).append(pid)
    totals = {}
    for name, root in roots.items():
        total, todo = 0.0, [root]
        while todo:
            pid = todo.pop()
            total += table.get(pid, (0, 0.0))[1]
            todo.extend(children.get(pid, ()))
        totals[name] = total
    return totals


def service_pids() -> dict[str, int]:
    """The pids of the PostgreSQL postmaster and the Redis server that the benchmark uses."""
    import psycopg
    import redis

    pids = {}
    try:
        with psycopg.connect(os.environ["DATABASE_URL"]) as conn:
            directory = conn.execute("SHOW data_directory").fetchone()[0]
        pids["postgres"] = int((Path(directory) / "postmaster.pid").read_text().split()[0])
    except (OSError, psycopg.Error, ValueError):
        pass
    try:
        pids["redis"] = int(redis.Redis.from_url(os.environ["REDIS_URL"]).info("server")["process_id"])
    except (KeyError, redis.RedisError, ValueError):
        pass
    return pids


def machine_busy() -> float:
    """CPU seconds the whole machine has been busy (all cores, /proc/stat less idle and iowait)."""
    values = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(values[:8]) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")


def cpu_snapshot(roots: dict[str, int], services: dict[str, int]) -> dict[str, float]:
    """CPU seconds so far of the named process trees, of PostgreSQL and Redis, and of the machine
    (``machine``: what other processes used shows, so that a busy machine is seen)."""
    groups = tuple(group for group in GROUPS if group not in services)
    return {**tree_cpu({**roots, **services}), **cpu_by_group(groups), "machine": machine_busy()}


def other_cpu(cpu: dict[str, float]) -> dict[str, float]:
    """Turn ``machine`` (per request) into ``others``: what no measured process group used."""
    machine = cpu.pop("machine")
    cpu["others"] = machine - sum(cpu.values())
    return cpu


# -- the database -----------------------------------------------------------------------------


def ensure_database(url: str) -> None:
    import psycopg

    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    admin = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def prepare(provider_url: str) -> str:
    """Migrate and seed: one model, four pooled keys on the fake provider, an unlimited license,
    a prompt for the batch regime and a user API key. Returns the raw API key."""
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from aimesh.models import AIApiKey, AIModel, Prompt
    from celaest import crypto
    from identity.models import Organization, User
    from licensing.models import License, SubscriptionPlan
    from settings_app.services.api_keys import api_key_create

    AIModel.objects.get_or_create(
        provider="openai",
        model_id=MODEL,
        defaults={"display_name": "GPT-4o mini", "capabilities": ["chat", "json"], "is_default": True},
    )
    for index in range(POOL_KEYS):
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
    Prompt.objects.get_or_create(
        slug="bench-batch",
        version=1,
        defaults={
            "name": "Bench batch",
            "user_template": "Summarize: {{ text }}",
            "variables": [{"name": "text"}],
            "max_output_tokens": 64,
            "is_active": True,
        },
    )
    plan, _ = SubscriptionPlan.objects.get_or_create(
        code="bench-unlimited", defaults={"name": "Bench", "limits": {"ai_requests_per_month": None}}
    )
    organization, _ = Organization.objects.get_or_create(slug="bench-org", defaults={"name": "Bench"})
    License.objects.get_or_create(
        organization=organization, plan=plan, defaults={"license_key": "CEL-BENCH-" + os.urandom(8).hex().upper()}
    )
    user, _ = User.objects.get_or_create(
        email="bench@example.com", defaults={"organization": organization, "role": "owner"}
    )
    return api_key_create(user=user, name="bench", scopes=["*"], rate_limit_rpm=10_000_000).raw_key


def set_pool_rpm(rpm_each: int) -> None:
    """Set every pooled key's per-minute budget (saved one by one: each write retires the
    routers' cached pool), healthy and out of cooldown."""
    from aimesh.models import AIApiKey

    for key in AIApiKey.objects.filter(provider="openai", key_name__startswith="bench-"):
        key.rate_limit_rpm = rpm_each
        key.cooldown_until = None
        key.consecutive_failures = 0
        key.is_healthy = True
        key.save()


# -- measuring --------------------------------------------------------------------------------


class Bench:
    def __init__(self, args, logs: Path, env: dict):
        self.args = args
        self.logs = logs
        self.env = env
        self.processes: list[subprocess.Popen] = []
        self.provider_port = free_port()
        self.provider_url = f"http://127.0.0.1:{self.provider_port}"
        self.results: dict[str, dict[str, dict]] = {}

    def provider_config(self, **config) -> None:
        request = urllib.request.Request(  # noqa: S310 - a local URL
            f"{self.provider_url}/_bench/config",
            data=json.dumps(config).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10):  # noqa: S310
            pass

    def measure(self, target: str, base_url: str, api_key: str, root: int, regime: str) -> dict:
        concurrency, latency_ms, default_total, stream = REGIMES[regime]
        total = getattr(self.args, f"requests_{regime}") or default_total
        if regime == "3":
            concurrency = total
        warmup = min(concurrency, 200) if regime != "3" else 200
        self.provider_config(latency_ms=0, stream_seconds=0)
        command = [
            self.args.client_python, str(HERE / "load.py"),
            "--base-url", base_url, "--api-key", api_key, "--model", MODEL,
            "--total", str(total), "--concurrency", str(concurrency), "--warmup", str(warmup),
            "--timeout", str(self.args.client_timeout),
        ]  # fmt: skip
        if stream:
            command += ["--stream", "--rss-root", str(root)]
        load = subprocess.Popen(command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = load.stdout.readline()
        if line.strip() != "READY":
            load.kill()
            raise RuntimeError(f"the load generator did not start: {line!r}")
        self.provider_config(latency_ms=latency_ms, stream_seconds=self.args.stream_seconds if stream else 0)
        time.sleep(0.5)
        roots = {"server": root, "provider": self.provider_process.pid}
        if target == "CELAEST":
            roots["flush"] = self.flusher.pid
        before = cpu_snapshot(roots, self.services)
        load.stdin.write("go\n")
        load.stdin.flush()
        output = load.stdout.read()
        load.wait()
        after = cpu_snapshot(roots, self.services)
        figures = json.loads(output.strip().splitlines()[-1])
        cpu = {name: (after[name] - before[name]) * 1000 / max(total, 1) for name in before}
        # The client's own count: the driver's includes the load generator's start and warm-up.
        cpu.pop("self", None)
        cpu["client"] = figures["client_cpu_ms"]
        cpu = other_cpu(cpu)
        if target == "direct":
            cpu.pop("server")  # the provider is the server
        figures["cpu_ms"] = {name: ms for name, ms in cpu.items() if ms >= 0.05}
        figures["target"] = target
        return figures

    def report(self, regime: str, target: str, figures: dict) -> None:
        direct = self.results.get(regime, {}).get("direct")
        line = (
            f"  {target:<8} {figures['requests']:>5} ok {figures['errors']:>4} err "
            f"{figures['rps']:>8.1f} req/s  p50 {figures['p50'] or 0:>8.1f} ms  p99 {figures['p99'] or 0:>8.1f} ms"
        )
        if direct and target != "direct" and figures["p50"] and direct["p50"]:
            line += f"  overhead p50 {figures['p50'] - direct['p50']:>7.1f} ms"
            line += f"  ({figures['rps'] / direct['rps'] * 100:.0f}% of direct req/s)"
        print(line, flush=True)
        if figures["error_kinds"]:
            print(f"      errors: {figures['error_kinds']}")
        if "plateau_rss_kb" in figures:
            per_stream = None
            if figures["plateau_rss_kb"] is not None:
                per_stream = (
                    (figures["plateau_rss_kb"] - figures["idle_rss_kb"]) / figures["requests"]
                    if figures["requests"]
                    else None
                )
            figures["kb_per_stream"] = per_stream
            print(
                f"      streams open at most {figures['max_open']}, "
                f"server RSS idle {figures['idle_rss_kb'] / 1024:.0f} MB, "
                f"plateau {((figures['plateau_rss_kb'] or 0) / 1024):.0f} MB ({figures['plateau_samples']} samples), "
                f"peak {(figures['peak_rss_kb'] or 0) / 1024:.0f} MB: "
                + (f"{per_stream:.1f} KB per stream" if per_stream is not None else "no plateau")
                + f"; first chunk p50 {figures.get('first_chunk_p50') or 0:.0f} ms"
            )
        print("      CPU ms/request: " + ", ".join(f"{name} {ms:.2f}" for name, ms in figures["cpu_ms"].items()))

    # -- the servers ------------------------------------------------------------------------

    def start_provider(self) -> None:
        self.provider_process = start(
            [
                self.args.client_python,
                str(HERE / "fast_provider.py"),
                "--port",
                str(self.provider_port),
                "--latency-ms",
                "0",
            ],
            self.env,
            self.logs / "provider.log",
        )
        self.processes.append(self.provider_process)
        wait_ready(f"{self.provider_url}/_bench/stats", settle=0.5)

    def start_celaest(self) -> tuple[subprocess.Popen, int]:
        args, python = self.args, sys.executable
        port = free_port()
        if args.server == "wsgi":
            command = [
                python, "-m", "gunicorn", "celaest.wsgi", "-b", f"127.0.0.1:{port}", "-k", "gthread",
                "-w", str(args.workers), "--threads", str(args.threads),
                "--worker-connections", str(args.worker_connections), "--keep-alive", "30",
                "--log-level", "warning",
            ]  # fmt: skip
        elif args.server == "asgi":
            command = [
                python, "-m", "uvicorn", "celaest.asgi:application", "--host", "127.0.0.1", "--port", str(port),
                "--workers", str(args.workers), "--loop", "uvloop", "--http", "httptools", "--no-access-log",
                "--log-level", "warning", "--timeout-keep-alive", "30", "--backlog", "4096",
            ]  # fmt: skip
        else:  # asgi-gunicorn
            command = [
                python, "-m", "gunicorn", "celaest.asgi:application", "-b", f"127.0.0.1:{port}",
                "-k", "uvicorn_worker.UvicornWorker", "-w", str(args.workers), "--keep-alive", "30",
                "--backlog", "4096", "--log-level", "warning",
            ]  # fmt: skip
        process = start(command, self.env, self.logs / "celaest.log")
        self.processes.append(process)
        # The meter's flush (production: the beat job, every second) writes the counts and the
        # task rows behind the answers; its CPU is counted as ``flush``.
        self.flusher = start([python, str(HERE / "meter_flusher.py")], self.env, self.logs / "flush.log")
        self.processes.append(self.flusher)
        wait_ready(f"http://127.0.0.1:{port}/health/live")
        return process, port

    def start_litellm(self) -> tuple[subprocess.Popen, int]:
        config = self.logs / "litellm.yaml"
        config.write_text(
            "model_list:\n"
            f"  - model_name: {MODEL}\n"
            "    litellm_params:\n"
            f"      model: openai/{MODEL}\n"
            f"      api_base: {self.provider_url}/v1\n"
            "      api_key: sk-bench-litellm\n"
            "general_settings:\n"
            "  master_key: sk-bench-litellm-master\n"
        )
        port = free_port()
        command = [
            self.args.litellm, "--config", str(config), "--host", "127.0.0.1", "--port", str(port),
            "--num_workers", str(self.args.workers),
        ]  # fmt: skip
        # Offline: LiteLLM would otherwise fetch its model price map from the internet at start.
        # Without DATABASE_URL: LiteLLM would take it for its own (Prisma) spend-tracking database.
        env = {k: v for k, v in self.env.items() if k not in ("DATABASE_URL", "REDIS_URL")}
        env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
        process = start(command, env, self.logs / "litellm.log")
        self.processes.append(process)
        wait_ready(f"http://127.0.0.1:{port}/health/liveliness", timeout=180)
        return process, port

    # -- the batch (regime 4) ---------------------------------------------------------------

    def batch(self, celaest_port: int, api_key: str) -> dict:
        args = self.args
        set_pool_rpm(args.batch_rpm // POOL_KEYS)
        self.provider_config(latency_ms=args.batch_latency_ms, stream_seconds=0)
        worker = start(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "celaest",
                "worker",
                "-Q",
                "ai",
                "-n",
                "ai-bench@%h",
                "--concurrency",
                str(args.batch_concurrency),
                "--purge",
                "-l",
                "warning",
            ],  # fmt: skip
            self.env,
            self.logs / "celery.log",
        )
        self.processes.append(worker)
        time.sleep(8)  # the worker's processes load Django and connect to the broker
        base = f"http://127.0.0.1:{celaest_port}/api/v1/batches"
        headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
        inputs = [f"Bench input number {index}" for index in range(args.batch_size)]
        body = json.dumps({"prompt": "bench-batch", "name": "bench", "inputs": inputs}).encode()
        roots = {"server": self.celaest.pid, "celery": worker.pid}
        cpu_before = cpu_snapshot(roots, self.services)
        started = time.perf_counter()
        request = urllib.request.Request(base, data=body, headers=headers, method="POST")  # noqa: S310
        with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310
            batch = json.loads(response.read())
        accepted = time.perf_counter() - started
        print(f"  batch {batch['id']} of {batch['total_tasks']} accepted in {accepted:.2f} s", flush=True)
        last = ""
        while True:
            time.sleep(args.batch_poll)
            request = urllib.request.Request(f"{base}/{batch['id']}", headers=headers)  # noqa: S310
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                batch = json.loads(response.read())
            elapsed = time.perf_counter() - started
            progress = f"{batch['status']} {batch['completed_tasks']} done {batch['failed_tasks']} failed"
            if progress != last and int(elapsed) % 10 < args.batch_poll:
                print(f"    {elapsed:6.0f} s: {progress}", flush=True)
                last = progress
            if batch["status"] not in ("pending", "running"):
                break
            if elapsed > args.batch_timeout:
                print(f"  the batch was not done after {args.batch_timeout} s: stopping there")
                break
        elapsed = time.perf_counter() - started
        cpu_after = cpu_snapshot(roots, self.services)
        done = batch["completed_tasks"] + batch["failed_tasks"]
        cpu = {name: (cpu_after[name] - cpu_before[name]) * 1000 / max(done, 1) for name in cpu_before}
        cpu.pop("self", None)
        cpu = other_cpu(cpu)
        figures = {
            "status": batch["status"],
            "completed": batch["completed_tasks"],
            "failed": batch["failed_tasks"],
            "seconds": elapsed,
            "tasks_per_s": done / elapsed,
            "cpu_ms": {name: ms for name, ms in cpu.items() if ms >= 0.05},
        }
        print(
            f"  batch of {args.batch_size}: {figures['status']} in {elapsed:.1f} s "
            f"({figures['completed']} completed, {figures['failed']} failed, {figures['tasks_per_s']:.2f} tasks/s; "
            f"the rate limit allows {args.batch_size / args.batch_rpm * 60:.0f} s)"
        )
        print("      CPU ms/task: " + ", ".join(f"{name} {ms:.2f}" for name, ms in figures["cpu_ms"].items()))
        stop(worker)
        self.processes.remove(worker)
        set_pool_rpm(1_000_000)
        return figures

    # -- the run ----------------------------------------------------------------------------

    def run(self) -> None:
        args = self.args
        self.services = service_pids()
        self.start_provider()
        api_key = prepare(self.provider_url)
        self.celaest, celaest_port = self.start_celaest()
        targets = [("direct", f"{self.provider_url}/v1", "sk-bench-direct", self.provider_process.pid)]
        targets.append(("CELAEST", f"http://127.0.0.1:{celaest_port}/v1", api_key, self.celaest.pid))
        if args.litellm:
            litellm, litellm_port = self.start_litellm()
            targets.append(("LiteLLM", f"http://127.0.0.1:{litellm_port}/v1", "sk-bench-litellm-master", litellm.pid))
        layout = {
            "wsgi": f"gunicorn {args.workers}x{args.threads} gthread",
            "asgi": f"uvicorn {args.workers} workers, uvloop, httptools",
            "asgi-gunicorn": f"gunicorn {args.workers} uvicorn_worker.UvicornWorker",
        }[args.server]
        print(
            f"{os.cpu_count()} cores; CELAEST: {layout}; LiteLLM: {'yes' if args.litellm else 'no'}; logs {self.logs}"
        )
        for regime in args.regimes:
            if regime == "4":
                print(f"regime 4: batch of {args.batch_size}, provider {args.batch_latency_ms} ms, "
                      f"pool {args.batch_rpm} rpm, "
                      f"Celery -Q ai --concurrency {args.batch_concurrency}", flush=True)  # fmt: skip
                self.results["4"] = {"CELAEST": self.batch(celaest_port, api_key)}
                continue
            concurrency, latency_ms, default_total, stream = REGIMES[regime]
            total = getattr(args, f"requests_{regime}") or default_total
            if stream:
                print(f"regime 3: {total} concurrent streams of {args.stream_seconds:.0f} s", flush=True)
            else:
                print(f"regime {regime}: {concurrency} clients, provider {latency_ms} ms, {total} requests", flush=True)
            for target, base_url, key, root in targets:
                figures = self.measure(target, base_url, key, root, regime)
                self.results.setdefault(regime, {})[target] = figures
                self.report(regime, target, figures)
        if args.json:
            Path(args.json).write_text(json.dumps({"server": args.server, "results": self.results}, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    asgi_exists = (ROOT / "celaest" / "asgi.py").exists()
    parser.add_argument("--regimes", default="1,2,3,5", help="which regimes, comma-separated: 1,2,3,4,5")
    parser.add_argument(
        "--server",
        choices=("wsgi", "asgi", "asgi-gunicorn"),
        default="asgi" if asgi_exists else "wsgi",
        help="how CELAEST is served (default: asgi once celaest/asgi.py exists, else wsgi)",
    )
    parser.add_argument("--workers", type=int, default=2, help="server worker processes (CELAEST and LiteLLM)")
    parser.add_argument("--threads", type=int, default=8, help="threads per gunicorn worker (wsgi)")
    parser.add_argument(
        "--worker-connections", type=int, default=1000, help="connections a gunicorn gthread worker holds at most"
    )
    parser.add_argument(
        "--litellm",
        nargs="?",
        const="/work/litellm-venv/bin/litellm",
        metavar="LITELLM",
        help="also measure a LiteLLM proxy, started with this litellm command (its own virtualenv)",
    )
    parser.add_argument(
        "--client-python", default=DEFAULT_CLIENT_PYTHON if Path(DEFAULT_CLIENT_PYTHON).exists() else sys.executable
    )
    parser.add_argument("--client-timeout", type=float, default=120.0, help="seconds a request or stream may take")
    for regime, (_, _, total, _) in REGIMES.items():
        what = "streams" if regime == "3" else "requests"
        parser.add_argument(
            f"--requests-{regime}", type=int, default=0, help=f"regime {regime}'s {what} (default {total})"
        )
    parser.add_argument("--stream-seconds", type=float, default=10.0, help="how long the provider takes over a stream")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--batch-latency-ms", type=int, default=2000)
    parser.add_argument(
        "--batch-rpm", type=int, default=600, help="the pool's requests per minute, split over its 4 keys"
    )
    parser.add_argument("--batch-concurrency", type=int, default=2, help="Celery worker processes (-Q ai)")
    parser.add_argument("--batch-poll", type=float, default=1.0)
    parser.add_argument("--batch-timeout", type=float, default=1800.0)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    args.regimes = [regime.strip() for regime in args.regimes.split(",") if regime.strip()]
    unknown = set(args.regimes) - {"1", "2", "3", "4", "5"}
    if unknown:
        sys.exit(f"unknown regimes: {sorted(unknown)}")
    if args.server != "wsgi" and not asgi_exists:
        sys.exit(
            f"--server {args.server}: celaest/asgi.py does not exist yet "
            "(the ASGI gateway of issue 19); use --server wsgi"
        )
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        sys.exit("Set DATABASE_URL to a PostgreSQL database for the benchmark (and REDIS_URL).")
    ensure_database(os.environ["DATABASE_URL"])
    logs = Path(tempfile.mkdtemp(prefix="celaest-bench-"))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    bench = Bench(args, logs, env)
    try:
        bench.run()
    finally:
        for process in reversed(bench.processes):
            stop(process)
    print(f"logs: {logs}")


if __name__ == "__main__":
    main()
