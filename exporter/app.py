"""The exporter's state: inventory (swapped whole on reload), pool, prober, heartbeats.

Where the inventory comes from and how commands reach a host are constructor
arguments (defaults: the inventory file, SSH through the pool), so the app can
be driven end to end with an in-memory inventory and canned command output.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from exporter.config import ConfigError, Inventory, Module, Server, load_inventory
from exporter.heartbeats import HeartbeatStore
from exporter.probe import Prober, ProbeResult
from exporter.runner import RunnerFactory, production_runner
from exporter.ssh_pool import SshPool
from stacksense_common.ops import ReloadGauges

log = logging.getLogger(__name__)

# `_created` series double the size of /metrics and nothing here reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]

DEFAULT_TIMEOUT = 10.0
TIMEOUT_MARGIN = 0.5

InventoryLoader = Callable[[str | None], Inventory]
"""Reads the inventory at a path (None: no inventory, monitor this machine)."""


class UnknownTarget(LookupError):
    """The probe names a target or module that is not in the inventory."""


class ExporterApp:
    """Everything a request handler needs; one instance per process."""

    def __init__(
        self,
        config_path: str | None,
        *,
        local_name: str | None = None,
        load: InventoryLoader = load_inventory,
        runner: RunnerFactory = production_runner,
    ) -> None:
        """`load` reads the inventory (at start and on every reload); `runner` builds
        what runs the probe script on a host, given the first inventory and the pool."""
        self.config_path = config_path
        self.local_name = local_name or socket.gethostname()
        self.registry = CollectorRegistry()
        self.heartbeats = HeartbeatStore()
        self._lock = threading.Lock()
        self._load = load
        self.inventory = self._local_inventory(load(config_path))
        self.pool = SshPool(self.inventory)
        self.prober = Prober(runner(self.inventory, self.pool), self.heartbeats)
        self._metrics()
        self.reload_ok.set(1)
        self.reload_ts.set(time.time())

    def _local_inventory(self, inventory: Inventory) -> Inventory:
        if not inventory.local:
            return inventory
        local = Server(name=self.local_name, host="localhost", credentials="local")
        return Inventory(
            {local.name: local}, {}, inventory.modules, inventory.known_hosts, local=True
        )

    def _metrics(self) -> None:
        r = self.registry
        reload = ReloadGauges("exporter", r)  # the one naming scheme (stacksense_common.ops)
        self.reload_ok, self.reload_ts = reload.ok, reload.timestamp
        self.probes = Counter("stacksense_probes", "Probes run, by result.", ["result"], registry=r)
        self.probe_seconds = Histogram(
            "stacksense_probe_seconds",
            "Probe duration as seen by the exporter.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.pushes = Counter(
            "stacksense_push_heartbeats", "Push heartbeats, by result.", ["result"], registry=r
        )
        r.register(_InventoryCollector(self))

    # ------------------------------------------------------------ operations

    def reload(self) -> None:
        """Load the inventory again; all-or-nothing (raises ConfigError, keeps the old one).

        Refused, besides an invalid file: one that cannot be read or decoded, and
        one that would remove every server unless it says `allow_empty: true` (an
        editor's truncated save must not silently empty the fleet). Servers that
        left lose all their state: heartbeats, collector memo, connection, backoff.
        """
        try:
            inventory = self._load_for_reload()
        except ConfigError as exc:
            self.reload_ok.set(0)
            log.error("reload failed, keeping the previous inventory: %s", exc)
            raise
        with self._lock:
            self.inventory = inventory
            names = set(inventory.servers)
            self.pool.update_inventory(inventory)
            self.prober.forget_except(names)
            self.heartbeats.forget_except(names)
        self.reload_ok.set(1)
        self.reload_ts.set(time.time())
        log.info("inventory reloaded: %d servers", len(inventory.servers))

    def _load_for_reload(self) -> Inventory:
        try:
            inventory = self._local_inventory(self._load(self.config_path))
        except ConfigError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure keeps the old inventory
            raise ConfigError(
                f"{self.config_path}: cannot load inventory ({type(exc).__name__})"
            ) from None
        if inventory.local != self.inventory.local:
            raise ConfigError("switching between local and SSH mode needs a restart")
        if not inventory.servers and self.inventory.servers and not inventory.allow_empty:
            raise ConfigError(
                f"{self.config_path}: the new inventory has no servers and "
                f"would remove all {len(self.inventory.servers)}; set "
                "`allow_empty: true` in it to allow that"
            )
        return inventory

    def resolve(self, target: str, module_name: str | None) -> tuple[Server, Module]:
        inventory = self.inventory
        server = inventory.server(target)
        if server is None:
            raise UnknownTarget(f"unknown target {target!r}: not in the inventory")
        if server.push_only:
            raise UnknownTarget(
                f"target {target!r} is push-only (mode: push): it is never "
                "probed over SSH; its status comes from its agent's heartbeats"
            )
        name = module_name or server.module
        module = inventory.modules.get(name)
        if module is None:
            raise UnknownTarget(f"unknown module {name!r}")
        return server, module

    def probe(self, server: Server, module: Module, scrape_timeout: float | None) -> ProbeResult:
        timeout = min(
            module.command_timeout_seconds, (scrape_timeout or DEFAULT_TIMEOUT) - TIMEOUT_MARGIN
        )
        checks = self.inventory.checks_for(server, module)
        result = self.prober.probe(server, module, max(0.1, timeout), checks)
        self.probes.labels("success" if result.success else "failure").inc()
        self.probe_seconds.observe(result.duration)
        return result

    def service_discovery(self) -> list[dict[str, object]]:
        """http_sd targets: every server that is neither suspended nor push-only."""
        groups: list[dict[str, object]] = []
        for server in self.inventory.servers.values():
            if server.suspended or server.push_only:
                continue
            labels = {**server.labels, "server": server.name, "__param_module": server.module}
            groups.append({"targets": [server.name], "labels": labels})
        return groups

    def close(self) -> None:
        self.pool.close()


class _InventoryCollector(Collector):
    """Per-server heartbeat, suspension and pushed-agent gauges, built fresh each scrape."""

    def __init__(self, app: ExporterApp) -> None:
        self.app = app

    def collect(self) -> Iterable[Metric]:
        now = time.time()
        beats, pushed = self.app.heartbeats.snapshot()
        servers = self.app.inventory.servers
        last = GaugeMetricFamily(
            "stacksense_last_heartbeat_timestamp_seconds",
            "Unix time of the last successful contact, by source.",
            labels=["server", "source"],
        )
        age = GaugeMetricFamily(
            "stacksense_heartbeat_age_seconds",
            "Seconds since the last contact from any source (+Inf when never seen).",
            labels=["server"],
        )
        suspended = GaugeMetricFamily(
            "stacksense_server_suspended",
            "Whether monitoring of the server is suspended.",
            labels=["server"],
        )
        push_only = GaugeMetricFamily(
            "stacksense_server_push_only",
            "1 for a push-only server (mode: push): never probed, "
            "its status is its heartbeat's age.",
            labels=["server"],
        )
        for name, server in servers.items():
            newest = float("-inf")
            for source in ("ssh", "push"):
                ts = beats.get((name, source))
                if ts is not None:
                    last.add_metric([name, source], ts)
                    newest = max(newest, ts)
            age.add_metric([name], now - newest if newest > float("-inf") else float("inf"))
            suspended.add_metric([name], 1.0 if server.suspended else 0.0)
            push_only.add_metric([name], 1.0 if server.push_only else 0.0)
        yield last
        yield age
        yield suspended
        yield push_only
        yield from _agent_families(self.app.heartbeats.agents(), servers)
        yield from _pushed_families(pushed, servers)
        yield GaugeMetricFamily(
            "stacksense_ssh_connections_open",
            "Pooled SSH connections open.",
            value=self.app.pool.open_connections(),
        )
        yield GaugeMetricFamily(
            "stacksense_inventory_servers", "Servers in the inventory.", value=len(servers)
        )


AGENT_LABELS = (
    "version",
    "os",
    "os_release",
    "os_pretty_name",
    "arch",
    "hostname",
    "cpu_model",
    "cpu_cores",
    "cpu_threads",
    "memory_bytes",
)


def _agent_families(
    agents: dict[str, dict[str, str]], servers: Mapping[str, Server]
) -> Iterable[Metric]:
    """stacksense_agent_info: each pushing agent's version and the host facts it sent."""
    fam = GaugeMetricFamily(
        "stacksense_agent_info",
        "The push agent's version and the host facts it sent with its last heartbeat.",
        labels=["server", *AGENT_LABELS],
    )
    for server, info in agents.items():
        if server in servers:
            fam.add_metric([server, *(info.get(k, "") for k in AGENT_LABELS)], 1.0)
    if fam.samples:
        yield fam


_PUSHED = {
    "cpu_usage_ratio": "stacksense_cpu_usage_ratio",
    "memory_usage_ratio": "stacksense_memory_usage_ratio",
    "swap_usage_ratio": "stacksense_swap_usage_ratio",
    "load1": "node_load1",
    "boot_time_seconds": "node_boot_time_seconds",
}


def _pushed_families(pushed: dict[str, dict[str, Any]], servers: object) -> Iterable[Metric]:
    """Agent-reported values, under the same names as probe output, labelled by server."""
    fams = {
        key: GaugeMetricFamily(name, f"Pushed by the agent: {key}.", labels=["server"])
        for key, name in _PUSHED.items()
    }
    fs = GaugeMetricFamily(
        "stacksense_filesystem_usage_ratio",
        "Pushed by the agent: filesystem usage ratio.",
        labels=["server", "mountpoint"],
    )
    for server, metrics in pushed.items():
        for key, fam in fams.items():
            value = metrics.get(key)
            if isinstance(value, int | float):
                fam.add_metric([server], float(value))
        filesystems: dict[str, Any] = metrics.get("filesystem_usage_ratio") or {}
        for mount, value in filesystems.items():
            if isinstance(value, int | float):
                fs.add_metric([server, str(mount)], float(value))
    for fam in (*fams.values(), fs):
        if fam.samples:
            yield fam
