"""The whole StackSense pipeline as separate processes, for end-to-end flows.

Real sshd hosts on loopback, the exporter (`python -m exporter.main`), Prometheus with
`make run`'s scrape interval and http_sd refresh, the rule engine
(`python -m rules.cli run`), the router under gunicorn, and a webhook sink that records
every notification with the time it arrived. Each part can be stopped and started
again with its data, so a test can kill the exporter, stop Prometheus or stop
everything, as an operator's week does.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import requests
import yaml

from tests.peers.prometheus import PROMETHEUS
from tests.peers.router import RouterProcess
from tests.peers.sshd import Sshd, SshdKeys, sshd
from tests.peers.util import free_port, kill_group, stop_group, wait_for
from tests.peers.webhook import WebhookReceiver

REPO = Path(__file__).resolve().parents[2]
# What `make run` ships (scripts/run_stack.py): every job every 15 s, /sd re-read every 30 s.
SCRAPE_INTERVAL = "15s"
SD_REFRESH = "30s"


@dataclass
class Notification:
    at: float  # time.monotonic() on arrival
    status: str  # firing | resolved (the alert's own status)
    labels: dict[str, str]
    annotations: dict[str, str]


class TimedSink(WebhookReceiver):
    """A webhook receiver that keeps every alert of every notification, with its arrival."""

    def __init__(self) -> None:
        super().__init__()
        self.start()

    def notifications(
        self,
        alertname: str | None = None,
        server: str | None = None,
        status: str | None = None,
        since: float = 0.0,
    ) -> list[Notification]:
        found = [
            Notification(r.at, a["status"], a["labels"], a["annotations"])
            for r in self.requests()
            if 200 <= r.status < 300
            for a in r.json()["alerts"]
        ]
        return [
            n
            for n in found
            if n.at >= since
            and (alertname is None or n.labels.get("alertname") == alertname)
            and (server is None or n.labels.get("server") == server)
            and (status is None or n.status == status)
        ]


@dataclass
class Process:
    """A service started from argv, logging to a file, that can be stopped and restarted."""

    name: str
    argv: list[str]
    log_path: Path
    ready_url: str | None = None
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the process
        self.proc = subprocess.Popen(
            self.argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            start_new_session=True,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        log.close()
        if self.ready_url:
            proc, url = self.proc, self.ready_url
            wait_for(
                lambda: proc.poll() is None and requests.get(url, timeout=1).ok,
                timeout=40,
                interval=0.2,
                what=f"{self.name} ready ({self.log_path})",
            )

    def kill(self) -> None:
        """SIGKILL the whole process group: a crash."""
        kill_group(self.proc)
        self.proc = None

    def stop(self) -> None:
        stop_group(self.proc, 15)
        self.proc = None

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)


class Stack:
    """sshd hosts + exporter + Prometheus + rule engine + router + sink, under `root`."""

    def __init__(
        self,
        root: Path,
        keys: SshdKeys,
        *,
        conditions: list[dict[str, Any]] | None = None,
        status: dict[str, Any] | None = None,
    ) -> None:
        self.root = root
        self.keys = keys
        self.exits = ExitStack()
        self.hosts: dict[str, Sshd] = {}
        self.inventory: dict[str, dict[str, Any]] = {}
        self.known_hosts = root / "known_hosts"
        self.known_hosts.write_text("")
        self.sink = TimedSink()
        self.exits.callback(self.sink.stop)
        self.ports = {n: free_port() for n in ("exporter", "prometheus", "rules", "router")}
        self.url = {n: f"http://127.0.0.1:{p}" for n, p in self.ports.items()}
        self.conditions = conditions or []
        self.status_config = status or {}
        self.t0 = time.monotonic()
        self.events: list[tuple[float, str]] = []

    # --- hosts and inventory ------------------------------------------------------------

    def add_host(self, name: str, *, extra: list[str] | None = None) -> Sshd:
        host = self.exits.enter_context(sshd(self.root / f"sshd-{name}", self.keys, extra=extra))
        self.hosts[name] = host
        with self.known_hosts.open("a") as f:
            f.write(host.known_hosts_line())
        self.inventory[name] = {"name": name, "host": host.host, "port": host.port, "user": "root"}
        return host

    def add_raw(self, name: str, port: int) -> None:
        """An inventory entry for something that is not an sshd (e.g. a silent listener)."""
        self.inventory[name] = {"name": name, "host": "127.0.0.1", "port": port, "user": "root"}

    def stop_host(self, name: str) -> None:
        """The host dies: sshd and every session it forked (the exporter's pooled one too)."""
        host = self.hosts[name]
        assert host.proc is not None
        sessions = psutil.Process(host.proc.pid).children(recursive=True)
        host.proc.kill()
        for child in sessions:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()
        host.proc.wait(10)

    def start_host(self, name: str) -> None:
        host = self.hosts[name]
        cfg = host.workdir / "sshd_config"
        with open(host.workdir / "sshd.log", "ab") as log:  # sshd keeps its own copy
            host.proc = subprocess.Popen(
                ["/usr/sbin/sshd", "-D", "-e", "-f", str(cfg)], stdout=log, stderr=subprocess.STDOUT
            )
        proc = host.proc
        self.exits.callback(lambda: proc.poll() is None and (proc.terminate(), proc.wait(10)))
        wait_for(
            lambda: subprocess.run(
                ["ss", "-ltnH", f"sport = :{host.port}"], capture_output=True, text=True
            ).stdout.strip(),
            timeout=10,
            what=f"sshd {name} listening again",
        )

    def write_inventory(self) -> Path:
        path = self.root / "servers.yml"
        path.write_text(
            yaml.safe_dump(
                {
                    "known_hosts": str(self.known_hosts),
                    "credentials": {"default": {"key_file": str(self.keys.client_key)}},
                    "servers": list(self.inventory.values()),
                }
            )
        )
        return path

    def reload_exporter(self) -> None:
        self.write_inventory()
        self.exporter.signal(signal.SIGHUP)

    # --- services -----------------------------------------------------------------------

    def start(self) -> None:
        inventory = self.write_inventory()
        self.exporter = Process(
            "exporter",
            [
                sys.executable,
                "-m",
                "exporter.main",
                f"--config.file={inventory}",
                f"--web.listen-address=127.0.0.1:{self.ports['exporter']}",
            ],
            self.root / "exporter.log",
            f"{self.url['exporter']}/-/ready",
        )
        self.router = RouterProcess(
            self.url["router"],
            self.ports["router"],
            self._router_config(),
            self.root,
            "e2e-token",
            workers=2,
        )
        self.prometheus = Process(
            "prometheus",
            [
                PROMETHEUS,
                f"--config.file={self._prometheus_config()}",
                f"--storage.tsdb.path={self.root / 'prom-data'}",
                f"--web.listen-address=127.0.0.1:{self.ports['prometheus']}",
            ],
            self.root / "prometheus.log",
            f"{self.url['prometheus']}/-/ready",
        )
        self.rules = Process(
            "rules",
            [
                sys.executable,
                "-m",
                "rules.cli",
                "run",
                f"--config.file={self._rules_config()}",
                f"--web.listen-address=127.0.0.1:{self.ports['rules']}",
            ],
            self.root / "rules.log",
            f"{self.url['rules']}/-/healthy",
        )
        self.exits.callback(self.stop_all)
        self.start_all()

    def start_all(self) -> None:
        self.router.start()
        self.exporter.start()
        self.prometheus.start()
        self.rules.start()

    def stop_all(self) -> None:
        for part in (self.rules, self.prometheus, self.exporter):
            part.stop()
        self.router.stop()

    def close(self) -> None:
        self.exits.close()

    def _router_config(self) -> Path:
        (self.root / "tokens").write_text("e2e-token\n")
        path = self.root / "router.yml"
        path.write_text(
            yaml.safe_dump(
                {
                    "auth": {"tokens_file": str(self.root / "tokens")},
                    "storage": {"path": str(self.root / "router.db")},
                    # Short waits so a notification's time is the pipeline's, not the grouping's.
                    "route": {
                        "receiver": "sink",
                        "group_by": ["alertname", "server"],
                        "group_wait": "5s",
                        "group_interval": "10s",
                        "repeat_interval": "4h",
                    },
                    "receivers": [{"name": "sink", "webhook_configs": [{"url": self.sink.url}]}],
                }
            )
        )
        return path

    def _prometheus_config(self) -> Path:
        exporter = f"127.0.0.1:{self.ports['exporter']}"
        path = self.root / "prometheus.yml"
        path.write_text(
            yaml.safe_dump(
                {
                    "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": "15s"},
                    "scrape_configs": [
                        {
                            "job_name": "stacksense-probe",
                            "metrics_path": "/probe",
                            "http_sd_configs": [
                                {"url": f"http://{exporter}/sd", "refresh_interval": SD_REFRESH}
                            ],
                            "relabel_configs": [
                                {
                                    "source_labels": ["__address__"],
                                    "target_label": "__param_target",
                                },
                                {"source_labels": ["__param_target"], "target_label": "instance"},
                                {"target_label": "__address__", "replacement": exporter},
                            ],
                        },
                        {
                            "job_name": "stacksense-exporter",
                            "static_configs": [{"targets": [exporter]}],
                        },
                        {
                            "job_name": "prometheus",
                            "static_configs": [
                                {"targets": [f"127.0.0.1:{self.ports['prometheus']}"]}
                            ],
                        },
                    ],
                }
            )
        )
        return path

    def _rules_config(self) -> Path:
        conditions = self.root / "conditions.yml"
        conditions.write_text(yaml.safe_dump({"conditions": self.conditions}))
        path = self.root / "rules.yml"
        path.write_text(
            yaml.safe_dump(
                {
                    "prometheus": {"url": self.url["prometheus"]},
                    "interval": "5s",
                    "state_file": str(self.root / "rules-state.json"),
                    "external_url": self.url["rules"],
                    "conditions": {"file": str(conditions), "include_defaults": True},
                    "anomalies": {"enabled": False},
                    "status": self.status_config,
                    "receivers": [
                        {"url": self.url["router"], "bearer_token_file": str(self.root / "tokens")}
                    ],
                }
            )
        )
        return path

    # --- observations -------------------------------------------------------------------

    def mark(self, what: str) -> float:
        now = time.monotonic()
        self.events.append((now - self.t0, what))
        print(f"[{self.root.name} +{now - self.t0:6.1f}s] {what}", flush=True)
        return now

    def servers(self) -> dict[str, dict[str, Any]]:
        body = requests.get(f"{self.url['rules']}/api/v1/servers", timeout=5).json()
        servers: dict[str, dict[str, Any]] = body["servers"]
        return servers

    def status(self, name: str) -> str | None:
        try:
            server = self.servers().get(name)
        except (requests.RequestException, ValueError):
            return None
        return None if server is None else str(server.get("status"))

    def wait_status(self, name: str, status: str | tuple[str, ...], timeout: float) -> float:
        """Wait until the engine says `status` (or one of them) for `name`; seconds it took."""
        wanted = (status,) if isinstance(status, str) else status
        started = time.monotonic()
        wait_for(
            lambda: self.status(name) in wanted,
            timeout=timeout,
            interval=1,
            what=f"{name} {'/'.join(wanted)} (now {self.status(name)})",
        )
        return time.monotonic() - started

    def wait_notified(
        self,
        alertname: str,
        *,
        server: str | None = None,
        status: str = "firing",
        since: float,
        timeout: float,
    ) -> Notification:
        found = wait_for(
            lambda: self.sink.notifications(alertname, server, status, since),
            timeout=timeout,
            interval=0.5,
            what=f"{status} {alertname} {server or ''} notified",
        )
        return found[0]
