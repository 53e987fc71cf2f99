"""A fixed, read-only diagnostic run on one server: what an operator looks at first.

`POST /api/v1/diagnose/<server>` (exporter.server) and `stacksense diagnose`
run SCRIPT over the server's pooled SSH connection, on an exec channel of its
own (SshPool.exec_channel) so that the server's probes are not held up
meanwhile. The script is a constant: the request only chooses which inventory
server it runs on, and the alert labels a caller sends go to the recommender
(exporter.recommend), never into the script.

Each section runs under `timeout` with its own budget (the budgets add up to
less than DEADLINE), so one hung command (a `ps` stuck on a dead NFS mount's
/proc entry) costs its section, not the report: the section is reported
`timed_out` and the others still arrive. GNU timeout kills the section's whole
process group, so a child left behind cannot hold the pipe open. `du` runs
under `nice`/`ionice -c 3`, with `-x` (never crossing into other filesystems)
and `-d 2`, only on filesystems above FULL_PERCENT, at most three of them.
Every output line is prefixed with `|` on the host (the section markers never
are), so nothing a host prints can end or open a section. Process lines carry
the command name only, never the arguments: command lines
hold passwords often enough. Every section is cut at SECTION_BYTES on the host
and the whole output at MAX_OUTPUT; the parser caps every list again.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

from exporter.config import Server
from exporter.errors import ProbeFailure
from exporter.ssh_pool import SshPool

DEADLINE = 10.0
SECTION_BYTES = 16 * 1024
MAX_OUTPUT = 256 * 1024
FULL_PERCENT = 85  # filesystems at or above this get their largest directories listed
TOP_PROCESSES = 10
MAX_ITEMS = 40  # any list in the report (ports, units, kernel lines)
CACHE_SECONDS = 30.0  # a burst of alerts about one server runs one diagnosis
BEGIN, FINISH = "@@ss-diag", "@@ss-diag-end"
# Every output line is prefixed on the host, so no line a host controls (a mount path, a
# unit's description, a kernel message) can pass for a section marker.
QUOTE = "sed 's/^/|/'"

_PS = "ps -eo pid=,user=,pcpu=,pmem=,rss=,comm= --sort={key} | head -n " + str(TOP_PROCESSES)
_DF = "df -P -k -x squashfs -x devtmpfs -x iso9660 2>/dev/null"

# (name, budget in seconds, command). Budgets sum to 8.5 s, under DEADLINE.
SECTIONS: tuple[tuple[str, float, str], ...] = (
    ("ps_cpu", 1.0, _PS.format(key="-pcpu")),
    ("ps_memory", 1.0, _PS.format(key="-rss")),
    (
        "memory",
        0.5,
        "grep -E '^(MemTotal|MemAvailable|SwapTotal|SwapFree):' /proc/meminfo; "
        "grep '^oom_kill ' /proc/vmstat",
    ),
    (
        "load",
        0.5,
        "cat /proc/loadavg; echo cpus $(getconf _NPROCESSORS_ONLN); "
        "for f in cpu memory io; do [ -r /proc/pressure/$f ] && "
        'sed "s/^/$f /" /proc/pressure/$f; done; true',
    ),
    (
        "disk",
        3.5,
        f'{_DF} | awk -v t={FULL_PERCENT} \'NR>1 {{u=$5; sub("%","",u); if (u+0 >= t) '
        '{m=$6; for (i=7; i<=NF; i++) m=m" "$i; print u"\\t"$2"\\t"$3"\\t"$1"\\t"m}}\' '
        "| head -n 3 | while IFS='\t' read -r u s used dev m; do "
        'printf \'fs\\t%s\\t%s\\t%s\\t%s\\t%s\\n\' "$u" "$s" "$used" "$dev" "$m"; '
        "n='nice -n 19'; command -v ionice >/dev/null 2>&1 && n=\"ionice -c 3 $n\"; "
        'timeout -k 0.2 0.9 $n du -x -k -d 2 "$m" 2>/dev/null | sort -rn | head -n 8 '
        "| sed 's/^/du\\t/'; done",
    ),
    (
        "units",
        1.0,
        "if command -v systemctl >/dev/null 2>&1; then "
        "systemctl --failed --no-legend --plain --no-pager 2>&1 | head -n 40; "
        "else echo '@@absent'; fi",
    ),
    ("ports", 0.5, "ss -Hltnup 2>/dev/null | head -n 60"),
    (
        "kernel",
        0.5,
        "if dmesg >/dev/null 2>&1; then dmesg 2>/dev/null | grep -iE "
        "'out of memory|oom-kill|killed process|i/o error|ext4-fs error|xfs.*error|"
        "blk_update_request|medium error|buffer i/o' | tail -n 20; "
        'else echo "@@unreadable $(dmesg 2>&1 >/dev/null | head -n 1)"; fi',
    ),
)


def build_script() -> str:
    """The whole script: constants only (SECTIONS), each section in its own timeout."""
    lines = [
        "s() {",
        f"  printf '{BEGIN} %s\\n' \"$1\"",
        "  if command -v timeout >/dev/null 2>&1; then",
        f'    timeout -k 0.5 "$2" sh -c "{{ $3 ; }} 2>&1 | head -c {SECTION_BYTES} | {QUOTE}"'
        " </dev/null",
        "  else",
        f'    sh -c "{{ $3 ; }} 2>&1 | head -c {SECTION_BYTES} | {QUOTE}" </dev/null',
        "  fi",
        f'  printf \'\\n{FINISH} %s %s\\n\' "$1" "$?"',
        "}",
    ]
    lines += [f"s {name} {budget:g} {shlex.quote(command)}" for name, budget, command in SECTIONS]
    return "\n".join(lines) + "\n"


SCRIPT = build_script()
_SECTION_NAMES = [name for name, _, _ in SECTIONS]


def split_sections(output: str) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Section name -> its lines, and section name -> ok|timed_out|failed|missing."""
    lines: dict[str, list[str]] = {}
    status = dict.fromkeys(_SECTION_NAMES, "missing")
    current: str | None = None
    for line in output.splitlines():
        if line.startswith(FINISH + " "):
            parts = line.split()
            if len(parts) == 3 and parts[1] in status:
                rc = parts[2]
                status[parts[1]] = (
                    "timed_out" if rc in ("124", "137") else "ok" if rc == "0" else "failed"
                )
            current = None
        elif line.startswith(BEGIN + " "):
            name = line[len(BEGIN) + 1 :].strip()
            current = name if name in status else None
            if current:
                lines[current] = []
                status[current] = "incomplete"  # until its end line arrives
        elif (
            current is not None and line[:1] == "|" and len(line) > 1 and len(lines[current]) < 200
        ):
            lines[current].append(line[1:501])
    return lines, status


def _num(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _processes(lines: list[str]) -> list[dict[str, Any]]:
    out = []
    for line in lines[:TOP_PROCESSES]:
        parts = line.split(None, 5)
        if len(parts) < 6 or not parts[0].isdigit():
            continue
        cpu, mem, rss = _num(parts[2]), _num(parts[3]), _num(parts[4])
        out.append(
            {
                "pid": int(parts[0]),
                "user": parts[1][:32],
                "cpu_percent": cpu,
                "memory_percent": mem,
                "rss_bytes": int(rss * 1024) if rss is not None else None,
                "command": parts[5][:64],
            }
        )
    return out


def _memory(lines: list[str]) -> dict[str, Any]:
    values: dict[str, float] = {}
    for line in lines:
        parts = line.replace(":", " ").split()
        if len(parts) >= 2 and (value := _num(parts[1])) is not None:
            values[parts[0]] = value * (1024 if parts[-1] == "kB" else 1)
    total, avail = values.get("MemTotal"), values.get("MemAvailable")
    return {
        "total_bytes": total,
        "available_bytes": avail,
        "used_ratio": round(1 - avail / total, 4) if total and avail is not None else None,
        "swap_total_bytes": values.get("SwapTotal"),
        "swap_free_bytes": values.get("SwapFree"),
        "oom_kills_since_boot": int(values["oom_kill"]) if "oom_kill" in values else None,
    }


_PSI = re.compile(r"^(cpu|memory|io) (some|full) avg10=([\d.]+) avg60=([\d.]+)")


def _load(lines: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "load1": None,
        "load5": None,
        "load15": None,
        "cpus": None,
        "pressure": {},
    }
    for line in lines:
        parts = line.split()
        if len(parts) >= 3 and out["load1"] is None and (l1 := _num(parts[0])) is not None:
            out.update(load1=l1, load5=_num(parts[1]), load15=_num(parts[2]))
        elif parts[:1] == ["cpus"] and len(parts) == 2 and parts[1].isdigit():
            out["cpus"] = int(parts[1])
        elif m := _PSI.match(line):
            out["pressure"][f"{m[1]}_{m[2]}"] = {"avg10": float(m[3]), "avg60": float(m[4])}
    return out


def _filesystems(lines: list[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for line in lines:
        parts = line.split("\t")
        if parts[0] == "fs" and len(parts) == 6:
            size, used = _num(parts[2]), _num(parts[3])
            out.append(
                {
                    "mountpoint": parts[5],
                    "device": parts[4][:128],
                    "used_percent": _num(parts[1]),
                    "size_bytes": int(size * 1024) if size is not None else None,
                    "used_bytes": int(used * 1024) if used is not None else None,
                    "largest": [],
                }
            )
        elif parts[0] == "du" and len(parts) == 3 and out and len(out[-1]["largest"]) < 8:
            size = _num(parts[1])
            if size is not None:
                out[-1]["largest"].append({"path": parts[2][:256], "bytes": int(size * 1024)})
    return out


def _units(lines: list[str]) -> tuple[str, list[dict[str, str]]]:
    if lines[:1] == ["@@absent"]:
        return "absent", []
    units = []
    for line in lines:
        parts = line.split(None, 4)
        if len(parts) >= 4 and "." in parts[0] and parts[2] == "failed":
            units.append(
                {"unit": parts[0][:128], "description": (parts[4] if len(parts) > 4 else "")[:200]}
            )
    if not units and lines:
        return f"unavailable: {lines[0][:200]}", []
    return "ok", units[:MAX_ITEMS]


def _ports(lines: list[str]) -> list[dict[str, Any]]:
    out = []
    for line in lines[:MAX_ITEMS]:
        parts = line.split()
        if len(parts) < 5:
            continue
        local = parts[4]
        address, _, port = local.rpartition(":")
        proc = re.search(r'\(\("([^"]{1,64})"', line)
        out.append(
            {
                "protocol": parts[0],
                "address": address,
                "port": port,
                "process": proc[1] if proc else None,
            }
        )
    return out


def _kernel(lines: list[str]) -> dict[str, Any]:
    if lines and lines[0].startswith("@@unreadable"):
        reason = lines[0][len("@@unreadable") :].strip() or "dmesg failed"
        return {
            "readable": False,
            "note": f"kernel log unreadable: {reason[:200]}",
            "oom_lines": [],
            "disk_error_lines": [],
        }
    oom = [x for x in lines if re.search(r"out of memory|oom-kill|killed process", x, re.I)]
    disk = [x for x in lines if x not in oom]
    return {"readable": True, "note": None, "oom_lines": oom[-10:], "disk_error_lines": disk[-10:]}


def parse(output: str) -> dict[str, Any]:
    """The structured report from the script's output (any part of it may be missing)."""
    lines, status = split_sections(output)
    units_state, units = _units(lines.get("units", []))
    return {
        "sections": status,
        "timed_out": [n for n, s in status.items() if s in ("timed_out", "incomplete")],
        "processes": {
            "by_cpu": _processes(lines.get("ps_cpu", [])),
            "by_memory": _processes(lines.get("ps_memory", [])),
        },
        "memory": _memory(lines.get("memory", [])),
        "load": _load(lines.get("load", [])),
        "filesystems": _filesystems(lines.get("disk", [])),
        "full_percent_threshold": FULL_PERCENT,
        "systemd": units_state,
        "failed_units": units,
        "listening": _ports(lines.get("ports", [])),
        "kernel": _kernel(lines.get("kernel", [])),
    }


class Diagnoser:
    """Runs SCRIPT on a server (pool) or on this machine (local mode); caches per server."""

    def __init__(
        self, pool: SshPool | None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.pool = pool
        self.clock = clock
        self._locks: dict[str, threading.Lock] = {}
        self._cache: dict[str, tuple[float, dict[str, Any]]] = {}
        self._guard = threading.Lock()

    def diagnose(self, server: Server, deadline_seconds: float = DEADLINE) -> dict[str, Any]:
        with self._guard:
            lock = self._locks.setdefault(server.name, threading.Lock())
        # One run per server at a time; callers that waited get the fresh result.
        with lock:
            cached = self._cache.get(server.name)
            if cached is not None and self.clock() - cached[0] < CACHE_SECONDS:
                return {**cached[1], "cached": True}
            report = self._run(server, deadline_seconds)
            with self._guard:
                self._cache[server.name] = (self.clock(), report)
                for name in [
                    n for n, (t, _) in self._cache.items() if self.clock() - t >= CACHE_SECONDS
                ]:
                    del self._cache[name]  # bounded by the servers diagnosed recently
            return {**report, "cached": False}

    def _run(self, server: Server, deadline_seconds: float) -> dict[str, Any]:
        started, at = self.clock(), time.time()
        error: str | None = None
        output = ""
        try:
            output, finished = self._output(server, started + deadline_seconds)
            if not finished:
                error = f"the diagnostic run did not finish within {deadline_seconds:g}s"
        except ProbeFailure as failure:
            error = failure.short_message()
        report = parse(output)
        return {
            "server": server.name,
            "at": at,
            "duration_seconds": round(self.clock() - started, 3),
            "complete": error is None
            and not report["timed_out"]
            and all(s == "ok" for s in report["sections"].values()),
            "error": error,
            **report,
        }

    def _output(self, server: Server, deadline: float) -> tuple[str, bool]:
        if self.pool is None:
            return self._local(deadline)
        # The login shell only execs /bin/sh: the script is POSIX sh whatever the user's shell.
        status, output = self.pool.exec_channel(
            server, "exec /bin/sh -c " + shlex.quote(SCRIPT), deadline, max_output=MAX_OUTPUT
        )
        return output, status is not None

    def _local(self, deadline: float) -> tuple[str, bool]:
        proc = subprocess.Popen(
            ["/bin/sh", "-c", SCRIPT],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            out, _ = proc.communicate(timeout=max(0.1, deadline - self.clock()))
            return out[:MAX_OUTPUT].decode("utf-8", "replace"), True
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
            return out[:MAX_OUTPUT].decode("utf-8", "replace"), False
