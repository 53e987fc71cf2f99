"""This host's metrics and facts as the push API names them (psutil, so any OS)."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import socket
import time
from typing import Any

import psutil


class HostMetrics:
    """This host's figures as the push API names them (psutil, so any OS)."""

    def __init__(self) -> None:
        psutil.cpu_percent(interval=None)  # primes the counter the next call measures from
        self._primed_at = time.monotonic()

    def collect(self) -> dict[str, Any]:
        # Right after priming the measured span is too short to mean anything: sample briefly.
        blocking = 0.25 if time.monotonic() - self._primed_at < 0.1 else None
        cpu = psutil.cpu_percent(interval=blocking)
        self._primed_at = -1e9
        memory = psutil.virtual_memory()
        swap = psutil.swap_memory()
        metrics: dict[str, Any] = {
            "cpu_usage_ratio": _ratio(cpu / 100.0),
            "memory_usage_ratio": _ratio((memory.total - memory.available) / memory.total),
            "swap_usage_ratio": _ratio(swap.used / swap.total) if swap.total else 0.0,
            "boot_time_seconds": float(psutil.boot_time()),
            "filesystem_usage_ratio": filesystem_ratios(),
        }
        if hasattr(os, "getloadavg"):  # not on Windows
            metrics["load1"] = os.getloadavg()[0]
        return metrics


def agent_version() -> str:
    try:
        return importlib.metadata.version("stacksense")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def host_facts() -> dict[str, Any]:
    """What the exporter shows as stacksense_agent_info (read once; they do not change)."""
    facts: dict[str, Any] = {
        "os": platform.system(),
        "os_release": platform.release(),
        "arch": platform.machine(),
        "hostname": socket.gethostname(),
        "cpu_threads": psutil.cpu_count() or 0,
        "cpu_cores": psutil.cpu_count(logical=False) or 0,
        "memory_bytes": psutil.virtual_memory().total,
        "cpu_model": _cpu_model(),
        "os_pretty_name": _pretty_name(),
    }
    return {k: (v[:128] if isinstance(v, str) else v) for k, v in facts.items()}


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor()


def _pretty_name() -> str:
    try:
        with open("/etc/os-release", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.partition("=")[2].strip().strip('"')
    except OSError:
        pass
    return platform.platform()


def filesystem_ratios() -> dict[str, float]:
    """Used / (used + available) per mounted filesystem, as df computes Use%."""
    out: dict[str, float] = {}
    for part in psutil.disk_partitions(all=False):
        try:
            usage = psutil.disk_usage(part.mountpoint)
        except OSError:  # e.g. an empty CD drive on Windows, a stale network mount
            continue
        if usage.used + usage.free > 0:
            out[part.mountpoint] = _ratio(usage.used / (usage.used + usage.free))
    return out


def _ratio(value: float) -> float:
    return min(1.0, max(0.0, round(value, 6)))
