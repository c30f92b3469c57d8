"""How many physical cores and how much memory this process may use: llama.cpp runs fastest with
one thread per physical core (hyper-threads and oversubscription slow it down)."""

from __future__ import annotations

import math
import os
from pathlib import Path


def usable_cpus() -> int:
    """Logical CPUs this process may run on, capped by a cgroup CPU quota when there is one."""
    try:
        count = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS
        count = os.cpu_count() or 1
    quota = _cgroup_cpu_quota()
    return max(1, min(count, quota) if quota else count)


def physical_cores() -> int:
    """Physical cores among the usable CPUs (Linux /proc/cpuinfo), else the usable CPU count."""
    usable = usable_cpus()
    cores = _cpuinfo_cores()
    return max(1, min(usable, cores)) if cores else usable


def total_memory_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - exotic platforms
        return 8 * 1024**3


def _cpuinfo_cores() -> int | None:
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    try:
        allowed = os.sched_getaffinity(0)
    except AttributeError:  # pragma: no cover
        allowed = set()
    cores: set[tuple[str, str]] = set()
    for block in text.split("\n\n"):
        fields = dict(
            (key.strip(), value.strip())
            for key, _, value in (line.partition(":") for line in block.splitlines())
        )
        if "processor" not in fields:
            continue
        if allowed and fields["processor"].isdigit() and int(fields["processor"]) not in allowed:
            continue
        cores.add((fields.get("physical id", "0"), fields.get("core id", fields["processor"])))
    return len(cores) or None


def _cgroup_cpu_quota() -> int | None:
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text(encoding="utf-8").split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    return max(1, math.ceil(int(quota) / int(period)))
