"""The benchmark's fleet checks: 5 services, 3 commands and 2 logs per host (issue 13).

Services: three process matches and two systemd units (no systemd here: the unit
path still costs its `systemctl show`, which fails fast). Commands: cheap real
programs, one value of each kind. Logs: two files a background thread appends to
(~20 lines/s each, one in ten an ERROR), so every probe reads new data.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

LINES_PER_SECOND = 20


def checks_module(log_dir: Path) -> dict[str, Any]:
    logs = [log_dir / "app.log", log_dir / "auth.log"]
    return {
        "command_timeout_seconds": 10,
        "services": [
            {"name": "sshd", "process": "sshd"},
            {"name": "python", "process": "python3"},
            {"name": "shell", "process": "sh"},
            {"name": "nginx", "unit": "nginx.service"},
            {"name": "postgres", "unit": "postgresql.service", "process": "postgres"},
        ],
        "commands": [
            {"name": "true", "run": ["true"], "timeout_seconds": 2},
            {
                "name": "load",
                "run": ["cat", "/proc/loadavg"],
                "timeout_seconds": 2,
                "value": {"regex": r"^(\S+)"},
            },
            {"name": "answer", "run": ["echo", "42"], "timeout_seconds": 2, "value": "number"},
        ],
        "logs": [{"file": str(p), "patterns": {"error": "ERROR", "warn": "WARN"}} for p in logs],
    }


@contextmanager
def appended_logs(log_dir: Path) -> Iterator[Path]:
    """Two log files (readable by the login user) appended to while the benchmark runs."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_dir.chmod(0o755)
    files = [log_dir / "app.log", log_dir / "auth.log"]
    for f in files:
        f.write_text("")
        f.chmod(0o644)
    stop = threading.Event()

    def writer() -> None:
        n = 0
        while not stop.wait(1 / LINES_PER_SECOND):
            n += 1
            level = "ERROR" if n % 10 == 0 else "INFO"
            for f in files:
                with open(f, "a") as out:
                    out.write(f"2026-01-01T00:00:00 {level} request {n} handled in 3 ms\n")

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        yield log_dir
    finally:
        stop.set()
        thread.join(5)
