"""CPU time per group of processes, for the benchmarks' "CPU ms per request" figures.

A group is every process whose command line contains its name (``gunicorn``, ``postgres``, ...);
a process's own time and that of its children that ended (PostgreSQL backends) are counted.
The group ``self`` is the calling script and its ended children (the load generator).
"""

import os
from pathlib import Path


def cpu_by_group(groups: tuple[str, ...]) -> dict[str, float]:
    """CPU seconds (user + system) used so far by each group of processes on the machine."""
    ticks = os.sysconf("SC_CLK_TCK")
    totals = dict.fromkeys(groups, 0.0)
    me = str(os.getpid())
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or entry.name == me:
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        group = next((name for name in groups if name != "self" and name in command), None)
        if group:
            totals[group] += sum(int(value) for value in stat[11:15]) / ticks
    if "self" in groups:
        times = os.times()
        totals["self"] = times.user + times.system + times.children_user + times.children_system
    return totals


def cpu_ms_per_request(before: dict[str, float], after: dict[str, float], requests: int) -> dict[str, float]:
    return {name: (after[name] - before[name]) * 1000 / max(requests, 1) for name in before}
