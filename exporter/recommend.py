"""Findings from a diagnostic report: what looks wrong, what to do, and the evidence.

Behind a small provider interface (`Recommender`): the shipped one is local and
rule-based (`RuleRecommender`), needs no network, and is deterministic, so the
same report always gives the same findings. Another provider (a model, a site's
own runbook lookup) implements the same `recommend(alert_labels, diagnostics)`.

Findings are computed in the exporter, next to the diagnostics, so that the
HTTP API, `stacksense diagnose` and the router's notifications all show the
same ones, and the router stays a consumer that only renders them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

MEMORY_HIGH = 0.85  # used ratio (1 - MemAvailable/MemTotal)
LOAD_PER_CPU_HIGH = 2.0
PRESSURE_HIGH = 10.0  # PSI "some" avg10, percent of time stalled
MAX_FINDINGS = 8


@dataclass(frozen=True)
class Finding:
    text: str  # what is wrong, one line
    action: str  # what to do about it
    evidence: list[str] = field(default_factory=list)  # the report's lines it rests on
    kind: str = "info"  # memory|disk|unit|oom|cpu|kernel|log|incomplete: for ordering

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Recommender(Protocol):
    def recommend(
        self, alert_labels: Mapping[str, str], diagnostics: Mapping[str, Any]
    ) -> list[Finding]: ...


def human_size(n: float | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def _proc(p: Mapping[str, Any]) -> str:
    return (
        f"{p.get('command')} (pid {p.get('pid')}, user {p.get('user')}): "
        f"{human_size(p.get('rss_bytes'))} RSS, {p.get('cpu_percent')} % CPU"
    )


class RuleRecommender:
    """Fixed rules over the report; the alert's name only changes the order."""

    def recommend(
        self, alert_labels: Mapping[str, str], diagnostics: Mapping[str, Any]
    ) -> list[Finding]:
        findings = [
            *self._memory(diagnostics),
            *self._disk(diagnostics),
            *self._units(diagnostics),
            *self._oom(diagnostics),
            *self._cpu(diagnostics),
            *self._kernel(diagnostics),
            *self._logs(diagnostics),
            *self._incomplete(diagnostics),
        ]
        name = (alert_labels.get("alertname", "") + " " + alert_labels.get("check", "")).lower()
        first = (
            "memory"
            if "mem" in name or "oom" in name
            else "disk"
            if "disk" in name or "filesystem" in name or "space" in name
            else "cpu"
            if "cpu" in name or "load" in name
            else "unit"
            if "unit" in name or "service" in name
            else ""
        )
        findings.sort(key=lambda f: 0 if f.kind == first else 1)  # stable: rule order otherwise
        return findings[:MAX_FINDINGS]

    def _memory(self, d: Mapping[str, Any]) -> list[Finding]:
        mem = d.get("memory") or {}
        ratio, total = mem.get("used_ratio"), mem.get("total_bytes")
        if ratio is None or not total or ratio < MEMORY_HIGH:
            return []
        top = (d.get("processes") or {}).get("by_memory") or []
        top3 = top[:3]
        held = sum(p.get("rss_bytes") or 0 for p in top3)
        text = f"memory is {ratio * 100:.0f} % used"
        if top3:
            text += (
                f": the top {len(top3)} processes hold {held / total * 100:.0f} % of it "
                f"({', '.join(str(p.get('command')) for p in top3)})"
            )
        # The action names the process to look at first, not just "the largest".
        big = (
            f"{top3[0].get('command')} (pid {top3[0].get('pid')}) is expected to hold "
            f"{human_size(top3[0].get('rss_bytes'))}"
            if top3
            else "the largest process is expected to be this big"
        )
        return [
            Finding(
                text,
                f"check whether {big} (a leak, a cache without a limit); "
                "restart it or cap its memory",
                [_proc(p) for p in top3]
                + [
                    f"MemTotal {human_size(total)}, available "
                    f"{human_size(mem.get('available_bytes'))}"
                ],
                "memory",
            )
        ]

    def _disk(self, d: Mapping[str, Any]) -> list[Finding]:
        out = []
        for fs in d.get("filesystems") or []:
            largest = fs.get("largest") or []
            # du's first line is the mount itself (its total): name the directories under it.
            dirs = [x for x in largest if x.get("path") != fs.get("mountpoint")][:3]
            used = fs.get("used_percent")
            text = f"{fs.get('mountpoint')} is " + (
                f"{used:.0f} % full" if used is not None else "nearly full"
            )
            if dirs:
                text += ": largest directories " + ", ".join(
                    f"{x['path']} ({human_size(x['bytes'])})" for x in dirs
                )
            where = (
                f"in {dirs[0]['path']} first" if dirs else f"on {fs.get('mountpoint')} (du -x -d 2)"
            )
            out.append(
                Finding(
                    text,
                    f"look {where}: remove or rotate what grew there (old "
                    "logs, dumps, caches), or grow the filesystem",
                    [
                        f"{fs.get('device')} {human_size(fs.get('used_bytes'))} used of "
                        f"{human_size(fs.get('size_bytes'))}"
                    ]
                    + [f"{human_size(x['bytes'])}\t{x['path']}" for x in largest[:8]],
                    "disk",
                )
            )
        return out

    def _units(self, d: Mapping[str, Any]) -> list[Finding]:
        return [
            Finding(
                f"unit {u['unit']} failed",
                f"systemctl status {u['unit']}; journalctl -u {u['unit']} -n 50",
                [f"{u['unit']}: {u.get('description', '')}"],
                "unit",
            )
            for u in (d.get("failed_units") or [])[:5]
        ]

    def _oom(self, d: Mapping[str, Any]) -> list[Finding]:
        kills = (d.get("memory") or {}).get("oom_kills_since_boot")
        lines = (d.get("kernel") or {}).get("oom_lines") or []
        if not kills and not lines:
            return []
        text = f"{kills} OOM kills since boot" if kills else "the kernel log shows OOM kills"
        return [
            Finding(
                text,
                "find what the OOM killer chose (the kernel lines) and give that "
                "service a memory limit or the host more memory",
                lines[-5:] or [f"/proc/vmstat oom_kill {kills}"],
                "oom",
            )
        ]

    def _cpu(self, d: Mapping[str, Any]) -> list[Finding]:
        load = d.get("load") or {}
        cpus, load1 = load.get("cpus"), load.get("load1")
        stalled = ((load.get("pressure") or {}).get("cpu_some") or {}).get("avg10")
        busy = bool(cpus and load1 is not None and load1 / cpus >= LOAD_PER_CPU_HIGH)
        if not busy and not (stalled is not None and stalled >= PRESSURE_HIGH):
            return []
        top = ((d.get("processes") or {}).get("by_cpu") or [])[:3]
        text = f"load {load1} on {cpus} CPUs"
        if stalled is not None:
            text += f", runnable tasks waiting {stalled:.0f} % of the time"
        if top:
            text += f": busiest {top[0].get('command')} ({top[0].get('cpu_percent')} % CPU)"
        who = (
            f"{top[0].get('command')} (pid {top[0].get('pid')})" if top else "the busiest processes"
        )
        return [
            Finding(
                text, f"check whether {who} is doing expected work", [_proc(p) for p in top], "cpu"
            )
        ]

    def _kernel(self, d: Mapping[str, Any]) -> list[Finding]:
        lines = (d.get("kernel") or {}).get("disk_error_lines") or []
        if not lines:
            return []
        return [
            Finding(
                f"the kernel log shows {len(lines)} disk error lines",
                "check the disk (smartctl -a) and the filesystem named in the lines",
                lines[-5:],
                "kernel",
            )
        ]

    def _logs(self, d: Mapping[str, Any]) -> list[Finding]:
        matches = d.get("log_matches") or {}
        lines = [
            f"{file} [{pattern}]: {line}"
            for file, per in sorted(matches.items())
            for pattern, line in sorted(per.items())
        ]
        if not lines:
            return []
        files = sorted(matches)
        return [
            Finding(
                f"watched logs matched: {', '.join(files[:3])}"
                + (f" and {len(files) - 3} more" if len(files) > 3 else ""),
                "read the lines around these in the log",
                lines[:8],
                "log",
            )
        ]

    def _incomplete(self, d: Mapping[str, Any]) -> list[Finding]:
        missing = list(d.get("timed_out") or [])
        notes = []
        if missing:
            notes.append(f"timed out: {', '.join(missing)}")
        if d.get("error"):
            notes.append(str(d["error"]))
        kernel_note = (d.get("kernel") or {}).get("note")
        if kernel_note:
            notes.append(kernel_note)
        if not notes:
            return []
        return [
            Finding(
                "diagnostics are incomplete: " + "; ".join(notes),
                "look at the host directly for what is missing",
                notes,
                "incomplete",
            )
        ]
