"""Where the exporter's CPU per probe goes: py-spy samples of the running exporter process.

py-spy (pip install py-spy) samples the exporter without stopping it
(--nonblocking) while a steady phase runs, and only the thread holding the
GIL (--gil): that is where Python code runs, and on a busy machine it keeps
threads that merely wait (for the GIL, a lock or a socket) out of the picture.
Stacks are sorted into the stages of a probe by the first matching rule
below. The result is a ranking by share of samples; C work done with the GIL
released (socket I/O, some crypto) is not in it, and on a saturated machine a
GIL holder waiting for a CPU is still sampled, so shares are not milliseconds:
the isolated stage timings (bench/_exporter_stages.py) give those.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench._exporter_load import Outcome
from bench._exporter_procs import cpu_seconds

RATE_HZ = 250
# (stage, substring of a frame in the stack); first match wins, order matters.
STAGES = (
    ("paramiko transport thread (read, decrypt, dispatch packets)", "Transport.run (paramiko/"),
    ("remote shell I/O in the probe thread (send, recv, wait)", "RemoteShell."),
    ("pool bookkeeping (locks, slot, settings)", "SshPool."),
    ("split output into sections", "split_sections ("),
    ("collectors parse", "Prober._collect ("),
    ("render text exposition", "render (exporter/exposition.py"),
    ("probe glue (prober, app)", "Prober.probe ("),
    ("HTTP handling (request parse, response write)", "socketserver.py"),
)


def _frame_name(frame: str) -> str:
    """`Class.fn (path.py:12)` -> `Class.fn (path.py)`: lines of one function merge."""
    name, _, where = frame.partition(" (")
    return f"{name} ({where.rsplit(':', 1)[0]})" if where else name


def summarise(raw: str) -> dict[str, Any]:
    """Stage shares, top self and inclusive functions from py-spy's raw (collapsed) output."""
    stages: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [_frame_name(f) for f in stack.split(";") if f]
        stage = next((name for name, needle in STAGES if needle in stack), "other")
        stages[stage] += count
        if frames:
            leaf[frames[-1]] += count
        for name in set(frames):
            inclusive[name] += count

    def table(counter: Counter[str], n: int) -> list[dict[str, Any]]:
        return [{"name": k, "share": v / total} for k, v in counter.most_common(n)] if total else []

    return {
        "samples": total,
        "stages": table(stages, len(STAGES) + 1),
        "top_self": table(leaf, 15),
        "top_inclusive": table(inclusive, 25),
    }


def profile_phase(pid: int, load: Callable[[], Outcome]) -> dict[str, Any]:
    """Sample `pid` with py-spy while `load` runs; {'error': ...} when py-spy is missing."""
    spy = shutil.which("py-spy")
    if spy is None:
        return {"error": "py-spy not installed (pip install py-spy)"}
    with tempfile.TemporaryDirectory() as tmp:
        raw_path = Path(tmp) / "raw.txt"
        proc = subprocess.Popen(
            [
                spy,
                "record",
                "-p",
                str(pid),
                "-r",
                str(RATE_HZ),
                "-f",
                "raw",
                "-o",
                str(raw_path),
                "--nonblocking",
                "--gil",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        time.sleep(1.0)  # py-spy attaches
        cpu0 = cpu_seconds(pid)
        outcome = load()
        cpu = cpu_seconds(pid) - cpu0
        proc.send_signal(2)  # SIGINT: py-spy writes what it has and exits
        _, err = proc.communicate(timeout=60)
        if not raw_path.exists():
            return {"error": f"py-spy wrote nothing: {err.decode(errors='replace')[-300:]}"}
        raw = raw_path.read_text()
    ms = cpu / outcome.ok * 1e3 if outcome.ok else float("nan")
    return {"probes": outcome.ok, "exporter_cpu_ms_per_probe_while_sampled": ms, **summarise(raw)}


def print_profile(profile: dict[str, Any]) -> None:
    """Print the stage table and the top functions."""
    if "error" in profile:
        print(f"  profile: {profile['error']}")
        return
    print(
        f"\n  py-spy, share of GIL-holding samples ({profile['samples']} samples, "
        f"{profile['exporter_cpu_ms_per_probe_while_sampled']:.2f} ms CPU/probe while sampled)"
    )
    for row in profile["stages"]:
        print(f"    {row['share'] * 100:5.1f} %  {row['name']}")
    print("  top functions, self:")
    for row in profile["top_self"][:12]:
        print(f"    {row['share'] * 100:5.1f} %  {row['name']}")
