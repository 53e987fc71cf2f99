"""node_memory_* from /proc/meminfo, plus StackSense's memory and swap usage ratios."""

from __future__ import annotations

import functools
from collections.abc import Mapping

from exporter.collectors import ParseError, ProbeContext
from exporter.collectors._common import guarded, require
from exporter.collectors.base import Collector
from exporter.exposition import Family, gauge

NAME = "meminfo"
FILES = ("/proc/meminfo",)


@functools.lru_cache(maxsize=512)
def metric_suffix(field: str, unit: str) -> str:
    """node_exporter's name for a meminfo field: `Active(anon)`, `kB` -> `Active_anon_bytes`."""
    key = field.replace("(", "_").replace(")", "") if "(" in field else field
    if not key or not key.isascii() or not key.replace("_", "").isalnum() or key[0].isdigit():
        raise ParseError(f"/proc/meminfo: field name not usable in a metric: {field[:40]!r}")
    if unit == "kB":
        return key + "_bytes"
    if unit:
        raise ParseError(f"/proc/meminfo: unknown unit {unit[:10]!r} for {field[:40]!r}")
    return key


@guarded("/proc/meminfo")
def parse(text: str) -> dict[str, float]:
    """`{metric suffix: value}`: `Active(anon): 12 kB` -> `Active_anon_bytes: 12288`."""
    out: dict[str, float] = {}
    for line in text.split("\n"):
        if not line:
            continue
        field, sep, rest = line.partition(":")
        parts = rest.split()
        if not sep or not parts or len(parts) > 2:
            raise ParseError(f"/proc/meminfo: unexpected line {line[:60]!r}")
        unit = parts[1] if len(parts) == 2 else ""
        value = int(parts[0])
        out[metric_suffix(field, unit)] = float(value * 1024 if unit else value)
    if "MemTotal_bytes" not in out:
        raise ParseError("/proc/meminfo: no MemTotal")
    return out


def usage_ratios(mem: Mapping[str, float]) -> tuple[float, float]:
    """(memory used ratio, swap used ratio), both 0-1.

    Memory "used" is what node-mixin and the dashboards call used:
    1 - MemAvailable/MemTotal. Kernels before 3.14 have no MemAvailable; there
    free + buffers + cached stands in for it. No swap at all means 0 % used.
    """
    total = mem["MemTotal_bytes"]
    available = mem.get("MemAvailable_bytes")
    if available is None:
        available = (
            mem.get("MemFree_bytes", 0.0)
            + mem.get("Buffers_bytes", 0.0)
            + mem.get("Cached_bytes", 0.0)
        )
    memory = 1.0 - available / total if total > 0 else 0.0
    swap_total = mem.get("SwapTotal_bytes", 0.0)
    swap = (swap_total - mem.get("SwapFree_bytes", 0.0)) / swap_total if swap_total > 0 else 0.0
    return min(1.0, max(0.0, memory)), min(1.0, max(0.0, swap))


def collect(sections: Mapping[str, str], ctx: ProbeContext) -> list[Family]:
    """This probe's metric families, built fresh from its sections."""
    mem = parse(require(sections, "/proc/meminfo", NAME))
    families = [
        Family(f"node_memory_{key}", "gauge", f"Memory information field {key}.", [("", value)])
        for key, value in mem.items()
    ]
    memory, swap = usage_ratios(mem)
    families.append(
        gauge("stacksense_memory_usage_ratio", "1 - MemAvailable / MemTotal (0-1).", memory)
    )
    families.append(gauge("stacksense_swap_usage_ratio", "Share of swap space in use (0-1).", swap))
    return families


COLLECTOR = Collector(NAME, collect, files=FILES)
