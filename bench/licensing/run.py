#!/usr/bin/env python
"""Licensing benchmark: the public validation and heartbeat endpoints next to the cheapest
endpoint (/health/live).

Seeds PostgreSQL with 10,000 licenses and 1,000,000 validation rows (once; see seed.py), serves
the app as in production (gunicorn as the README's "Serving in production" says: sync workers,
two per core; production settings; 2 CPU cores), runs a Celery worker with beat (the validation
buffer is flushed while the load runs, as in production), validates every seeded machine
workers+1 times (steady use: each license then has its Redis snapshot, which lives ten minutes,
and each server process its copy), waits until those rows are flushed, and measures each
endpoint with wrk at 50 concurrent connections (heartbeats on the same machines, whose plan has a
heartbeat window: each beat's row carries the lease the flush extends). Prints requests/s, p50/p99 latency and the CPU
each process group spent per request (gunicorn, Celery, PostgreSQL, Redis, this script with wrk,
``other``: the rest of the machine, which should be near 0 — anything else running skews the
figures; run it under the same lock as other benchmarks — and ``steal``, CPU time the hypervisor
gave to other machines), and checks the targets for validation and heartbeats alike: throughput
>= 50% of the health endpoint's, p99 < 50 ms.

    python bench/licensing/run.py [--duration 20] [--rounds 3] [--workers 4] [--worker-class gthread --threads 8]

Each round measures both endpoints again on the same server (the figures move by a few
milliseconds from one measurement to the next); the targets must hold in every round.

Sync workers close the connection after each response (in production the proxy keeps the
clients' connections open), so wrk reconnects for every request, to both endpoints alike.

Needs wrk (apt-get install -y wrk), PostgreSQL (BENCH_DATABASE_URL, default
postgres://postgres@127.0.0.1:55432/celaest_h4_bench) and Redis (BENCH_REDIS_URL, default
redis://127.0.0.1:56379/4). Binds 127.0.0.1 only.
"""

import argparse
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from cpu import cpu_by_group, cpu_ms_per_request  # noqa: E402 - bench/ is not a package

PYTHON = sys.executable
CORES = "0,1"


def _env(var_dir: Path) -> dict:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "celaest.settings.production",
        "CELAEST_ENV_FILE": "/nonexistent",
        "DATABASE_URL": os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:55432/celaest_h4_bench"),
        "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:56379/4"),
        "SECRET_KEY": secrets.token_urlsafe(64),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "LICENSE_SIGNING_KEYS": os.environ.get("LICENSE_SIGNING_KEYS") or _signing_key(),
        "EMAIL_URL": "dummymail://",
        "SECURE_SSL_REDIRECT": "false",
        "TRUSTED_PROXIES": "127.0.0.1/32",
        "LOG_LEVEL": "WARNING",
        "DB_CONN_MAX_AGE": "600",
        "CELAEST_VAR_DIR": str(var_dir),
        "PYTHONPATH": str(ROOT),
    }


def _signing_key() -> str:
    """A fresh license signing key (production settings require one)."""
    command = [PYTHON, "manage.py", "generate_license_signing_key"]
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "celaest.settings", "CELAEST_ENV_FILE": "/nonexistent"}
    env.pop("DATABASE_URL", None)
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=True).stdout.strip()  # noqa: S603


def _create_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(url: str, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)  # noqa: S310 - a local URL
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"server did not answer at {url}")


def _ms(value: str) -> float:
    number, unit = re.match(r"([\d.]+)(us|ms|s)", value).groups()
    return float(number) * {"us": 0.001, "ms": 1, "s": 1000}[unit]


def _wrk(url: str, duration: int, script: list[str]) -> dict:
    command = ["wrk", "-t2", "-c50", f"-d{duration}s", "--latency", *script[:2], url, *script[2:]]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout  # noqa: S603
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50": _ms(re.search(r"\s50%\s+(\S+)", out).group(1)),
        "p99": _ms(re.search(r"\s99%\s+(\S+)", out).group(1)),
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),
        "non_2xx": int(errors.group(1)) if errors else 0,
        "socket_errors": socket_errors.group(1) if socket_errors else "none",
    }


_GROUPS = ("gunicorn", "celery", "postgres", "redis", "self")


def _measured(url: str, duration: int, script: list[str]) -> dict:
    """``_wrk`` plus the CPU each group of processes spent per request meanwhile, ``other``: the
    machine's CPU that none of them spent (anything else running skews the figures), and
    ``steal``: time the hypervisor gave this machine's cores to others (a round with steal was
    measured on fewer cores than it seems)."""
    before, (busy_before, steal_before) = cpu_by_group(_GROUPS), _machine_busy()
    result = _wrk(url, duration, script)
    after, (busy_after, steal_after) = cpu_by_group(_GROUPS), _machine_busy()
    requests = max(result["requests"], 1)
    result["cpu_ms"] = cpu_ms_per_request(before, after, result["requests"])
    other = (busy_after - busy_before) * 1000 / requests - sum(result["cpu_ms"].values())
    result["cpu_ms"]["other"] = max(other, 0.0)
    result["cpu_ms"]["steal"] = (steal_after - steal_before) * 1000 / requests
    return result


def _machine_busy() -> tuple[float, float]:
    """CPU seconds the whole machine has been busy (all but idle, I/O wait and steal), and stolen."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, Path("/proc/stat").read_text().split()[1:9])
    ticks = os.sysconf("SC_CLK_TCK")
    return (user + nice + system + irq + softirq) / ticks, steal / ticks


def _warm_up(port: int, machines: Path, passes: int) -> int:
    """Validate every seeded machine ``passes`` times, as steady use does within the license
    snapshots' life (``ipcontrol.snapshots.SNAPSHOT_TTL_SECONDS``), so that each server process
    has most licenses' copies; return how many validations were answered."""
    lines = machines.read_text().split("\n")
    lines = [line.split() for line in lines if line] * passes

    def run(part: list[list[str]]) -> int:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for key, fingerprint, ip in part:
            body = json.dumps({"key": key, "fingerprint": fingerprint, "hostname": "bench"})
            headers = {"Content-Type": "application/json", "X-Forwarded-For": ip}
            conn.request("POST", "/api/v1/licenses/validate", body, headers)
            conn.getresponse().read()
        conn.close()
        return len(part)

    with ThreadPoolExecutor(max_workers=8) as pool:
        return sum(pool.map(run, [lines[i::8] for i in range(8)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=20, help="seconds of load per endpoint")
    parser.add_argument("--rounds", type=int, default=1, help="measure both endpoints this many times")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes (two per core)")
    parser.add_argument("--worker-class", default="sync", choices=["sync", "gthread"], help="gunicorn worker class")
    parser.add_argument("--threads", type=int, default=1, help="threads per gunicorn worker (gthread only)")
    args = parser.parse_args()
    if args.worker_class == "sync" and args.threads != 1:
        raise SystemExit("sync workers have one thread (gunicorn would quietly switch to gthread)")
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install -y wrk")
    var_dir = Path(os.environ.get("BENCH_VAR_DIR", ROOT / "var" / "bench-licensing"))
    var_dir.mkdir(parents=True, exist_ok=True)
    env = _env(var_dir)
    _create_database(env["DATABASE_URL"])
    subprocess.run([PYTHON, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)  # noqa: S603
    machines = var_dir / "machines.txt"
    started = time.time()
    subprocess.run([PYTHON, str(HERE / "seed.py"), str(machines)], cwd=ROOT, env=env, check=True)  # noqa: S603
    print(f"seed ready in {time.time() - started:.0f} s")

    port = _free_port()
    taskset = ["taskset", "-c", CORES] if shutil.which("taskset") else []
    gunicorn = [
        *taskset, PYTHON, "-m", "gunicorn", "celaest.wsgi", "--bind", f"127.0.0.1:{port}", "--workers",
        str(args.workers), "--threads", str(args.threads), "--worker-class", args.worker_class, "--keep-alive", "30",
        "--log-level", "warning",
    ]  # fmt: skip
    worker = [*taskset, PYTHON, "-m", "celery", "-A", "celaest", "worker", "-B", "--concurrency", "1", "-l", "WARNING"]
    processes = [
        subprocess.Popen(gunicorn, cwd=ROOT, env=env, start_new_session=True),  # noqa: S603
        subprocess.Popen(worker, cwd=ROOT, env=env, start_new_session=True),  # noqa: S603
    ]
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_for(f"{base}/health/live")
        script = ["-s", str(HERE / "validate.lua"), "--", str(machines)]
        heartbeat_script = [*script, "/api/v1/licenses/heartbeat"]
        count_sql = "SELECT count(*) FROM license_validations"
        rows_before = _sql(env, count_sql) + _buffered(env)
        _wrk(f"{base}/health/live", 3, [])  # warm-up
        warmed = _warm_up(port, machines, passes=args.workers + 1)
        rounds = []
        for _ in range(args.rounds):
            _settle(env)
            rounds.append(
                (
                    _measured(f"{base}/health/live", args.duration, []),
                    _measured(base, args.duration, script),
                    _measured(base, args.duration, heartbeat_script),
                )
            )
        time.sleep(6)  # let the beat job flush the last buffered rows
        rows_after = _sql(env, count_sql)
    finally:
        for process in processes:
            os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            process.wait(timeout=30)

    print(f"\ngunicorn {args.worker_class} {args.workers}x{args.threads} on cores {CORES}; wrk 2 threads, "
          f"50 connections, "
          f"{args.duration} s per endpoint")  # fmt: skip
    ok = True
    for number, (health, validate, heartbeat) in enumerate(rounds, 1):
        print(f"\nround {number}\n{'endpoint':<32}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'non-2xx':>10}")
        measured = (("GET /health/live", health), ("POST /api/v1/licenses/validate", validate),
                    ("POST /api/v1/licenses/heartbeat", heartbeat))  # fmt: skip
        for name, result in measured:
            print(f"{name:<32}{result['rps']:>10.0f}{result['p50']:>10.2f}{result['p99']:>10.2f}"
                  f"{result['non_2xx']:>10}")  # fmt: skip
        print("CPU ms per request: " + "; ".join(
            f"{name} " + ", ".join(f"{group} {ms:.2f}" for group, ms in result["cpu_ms"].items())
            for name, result in (("health", health), ("validate", validate), ("heartbeat", heartbeat))
        ))  # fmt: skip
        for name, result in (("validation", validate), ("heartbeat", heartbeat)):
            ratio = result["rps"] / health["rps"]
            print(f"{name} throughput = {ratio:.0%} of health (target >= 50%); {name} p99 = "
                  f"{result['p99']:.1f} ms (target < 50 ms)")  # fmt: skip
            ok = ok and ratio >= 0.5 and result["p99"] < 50 and result["non_2xx"] == 0
        print(f"socket errors: health {health['socket_errors']}; validate {validate['socket_errors']}; "
              f"heartbeat {heartbeat['socket_errors']}")  # fmt: skip
    recorded = rows_after - rows_before
    answered = warmed + sum(validate["requests"] + heartbeat["requests"] for _, validate, heartbeat in rounds)
    print(f"\nvalidation rows recorded during the run: {recorded}; validations and heartbeats answered "
          f"(incl. warm-up): {answered}")  # fmt: skip
    print("TARGETS MET" if ok else "TARGETS MISSED")


def _settle(env: dict, timeout: float = 120) -> None:
    """Wait until the warm-up's rows are flushed (none buffered, no flush under way), so that
    flushing them does not run during the health endpoint's measurement."""
    import redis

    client = redis.Redis.from_url(env["REDIS_URL"])
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not client.llen("ipcontrol:validations") and not client.keys("ipcontrol:validations:taken:*"):
            break
        time.sleep(0.5)
    time.sleep(2)


def _buffered(env: dict) -> int:
    """Rows already waiting in the validation buffer (``ipcontrol.buffer.BUFFER_KEY``)."""
    import redis

    return redis.Redis.from_url(env["REDIS_URL"]).llen("ipcontrol:validations")


def _sql(env: dict, query: str) -> int:
    import psycopg

    with psycopg.connect(env["DATABASE_URL"]) as conn:
        return conn.execute(query).fetchone()[0]


if __name__ == "__main__":
    main()
