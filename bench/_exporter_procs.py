"""Processes for the exporter benchmark: sshd fleet, exporter, node_exporter, CPU and memory.

CPU is read from /proc/<pid>/stat (utime+stime, every thread of the
process). The monitored side is the whole sshd process tree: each listener,
its per-connection children and the commands they fork. A live process
counts utime+stime+cutime+cstime, where cutime/cstime hold every child it has
already reaped, so a `sh`/`grep` that ran and exited inside a phase is still
counted exactly once (by its parent's cutime). The kernel derives these from
its nanosecond run-time accounting, so short-lived processes are not lost to
the 10 ms tick.
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.peers.sshd import Sshd, SshdKeys, sshd
from tests.peers.util import free_port, stop, wait_for

ROOT = Path(__file__).resolve().parent.parent
TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
NODE_EXPORTER = "/usr/bin/prometheus-node-exporter"
# Addresses on the loopback interface (Linux routes all of 127/8 to lo).
SSHD_HOSTS = ("127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5")


def _stat_fields(pid: int) -> list[str]:
    # comm (field 2) may contain spaces and parentheses: split after the last ')'.
    text = Path(f"/proc/{pid}/stat").read_text()
    return text.rsplit(")", 1)[1].split()  # [0] is field 3 (state)


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a live process (all its threads), in seconds."""
    f = _stat_fields(pid)
    return (int(f[11]) + int(f[12])) / TICK


def rss_bytes(pid: int) -> int:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE


def _process_table() -> dict[int, list[str]]:
    table: dict[int, list[str]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                table[int(entry.name)] = _stat_fields(int(entry.name))
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue  # exited while we looked
    return table


def _descendants(table: dict[int, list[str]], roots: list[int]) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid, f in table.items():
        children.setdefault(int(f[1]), []).append(pid)
    found, todo = [], [r for r in roots if r in table]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, ()))
    return found


def tree_cpu_seconds(roots: list[int]) -> float:
    """CPU of the process trees under `roots`, including reaped children (see module doc)."""
    table = _process_table()
    total = 0
    for pid in _descendants(table, roots):
        f = table[pid]
        total += int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])
    return total / TICK


def tree_size(roots: list[int]) -> int:
    return len(_descendants(_process_table(), roots))


def http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - loopback only
        return bool(resp.status == 200)


@dataclass
class Fleet:
    """A few real sshd instances on distinct loopback addresses."""

    servers: list[Sshd]
    keys: SshdKeys
    known_hosts: Path

    @property
    def pids(self) -> list[int]:
        return [s.proc.pid for s in self.servers if s.proc is not None]

    def inventory(
        self,
        path: Path,
        count: int,
        user: str,
        collectors: list[str] | None = None,
        one_write: bool = False,
        checks: dict[str, Any] | None = None,
    ) -> Path:
        """An inventory of `count` targets spread round-robin over the sshd instances.

        `collectors` replaces the default module's list (None keeps every collector);
        `one_write` sets the module's option of that name; `checks` adds services,
        commands and logs (and any module option) to the module.
        """
        servers = [
            {
                "name": target_name(i),
                "host": self.servers[i % len(self.servers)].host,
                "port": self.servers[i % len(self.servers)].port,
                "user": user,
            }
            for i in range(count)
        ]
        data: dict[str, Any] = {
            "known_hosts": str(self.known_hosts),
            "credentials": {"default": {"key_file": str(self.keys.client_key)}},
            "servers": servers,
        }
        module: dict[str, Any] = {}
        if collectors is not None:
            module["collectors"] = collectors
        if one_write:
            module["one_write"] = True
        module.update(checks or {})
        if module:
            data["modules"] = {"default": module}
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path


def target_name(index: int) -> str:
    return f"t{index:04d}"


def _usable(host: str) -> bool:
    try:
        free_port(host)
        return True
    except OSError:
        return False


@contextmanager
def sshd_fleet(workdir: Path, count: int = len(SSHD_HOSTS)) -> Iterator[Fleet]:
    """Start `count` sshd on 127.0.0.2.. (falling back to 127.0.0.1 if those cannot bind)."""
    # sshd reads authorized_keys as the login user: the tree must be traversable.
    workdir.chmod(0o755)
    keys = SshdKeys.create(workdir / "keys")
    hosts = [h if _usable(h) else "127.0.0.1" for h in SSHD_HOSTS[:count]]
    with ExitStack() as stack:
        servers = [
            stack.enter_context(sshd(workdir / f"sshd{i}", keys, host=h))
            for i, h in enumerate(hosts)
        ]
        known = workdir / "known_hosts"
        known.write_text("".join(s.known_hosts_line() for s in servers))
        yield Fleet(servers, keys, known)


@dataclass
class Service:
    """A started HTTP service process on loopback."""

    proc: subprocess.Popen[bytes]
    host: str
    port: int
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_tail(self, chars: int = 1500) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


@contextmanager
def _service(
    cmd: list[str], port: int, ready_path: str, log: Path, what: str, cwd: Path = ROOT
) -> Iterator[Service]:
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=cwd)
        service = Service(proc, "127.0.0.1", port, log)
        try:

            def ready() -> bool:
                if proc.poll() is not None:
                    raise RuntimeError(f"{what} exited: {service.log_tail()}")
                return http_ok(f"http://127.0.0.1:{port}{ready_path}")

            wait_for(ready, timeout=30, what=what)
            yield service
        finally:
            stop(proc, timeout=20)


@contextmanager
def exporter_process(inventory: Path, log: Path, source: Path = ROOT) -> Iterator[Service]:
    """The real exporter as its own process, so that its CPU and memory are its own.

    `source` is the directory holding the `exporter` package (the repository,
    or a patched copy when trying an optimisation).
    """
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "exporter.main",
        "--config.file",
        str(inventory),
        "--web.listen-address",
        f"127.0.0.1:{port}",
        "--log.level",
        "warning",
    ]
    with _service(cmd, port, "/-/ready", log, "exporter", cwd=source) as service:
        yield service


@contextmanager
def node_exporter(log: Path) -> Iterator[Service]:
    """The real node_exporter with every default collector, on loopback."""
    port = free_port()
    cmd = [NODE_EXPORTER, f"--web.listen-address=127.0.0.1:{port}"]
    with _service(cmd, port, "/metrics", log, "node_exporter") as service:
        yield service


def node_exporter_available() -> bool:
    return os.access(NODE_EXPORTER, os.X_OK)
