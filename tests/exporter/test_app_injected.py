"""The whole app (inventory, prober, collectors, its own /metrics) with injected fakes.

The inventory comes from an in-memory loader and the runner serves the
checked-in probe output of the fixture hosts, so probes, heartbeats, failures
and reloads run through the real app with no sshd and no inventory file.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest

from exporter.app import ExporterApp, UnknownTarget
from exporter.collectors.registry import DEFAULT_COLLECTORS
from exporter.command import MARKER
from exporter.config import ConfigError, Inventory, Server, load_inventory, parse_inventory
from exporter.errors import REASONS, ProbeFailure
from exporter.remote_shell import DEFAULT_MAX_OUTPUT
from exporter.runner import LocalRunner, SshRunner, production_runner
from exporter.ssh_pool import CommandResult, SshPool
from tests.exporter.collector_helpers import HOSTS
from tests.exporter.harness import samples

CENTOS = (HOSTS / "centos7" / "probe.txt").read_text()


class FixtureRunner:
    """Answers each server with canned output (or raises its failure); records every script."""

    def __init__(self, answers: dict[str, str | ProbeFailure]) -> None:
        self.answers = answers
        self.scripts: list[tuple[str, str]] = []

    def run(
        self,
        server: Server,
        command: str,
        deadline: float,
        *,
        max_output: int = DEFAULT_MAX_OUTPUT,
        prelude: str = "",
    ) -> CommandResult:
        self.scripts.append((server.name, command))
        answer = self.answers[server.name]
        if isinstance(answer, ProbeFailure):
            raise answer
        return CommandResult(0, answer)

    def connection_id(self, server: Server) -> int | None:
        return 1


def inventory(tmp_path: Path, *names: str) -> Inventory:
    return parse_inventory(
        {
            "credentials": {"default": {"agent": True}},
            "servers": [{"name": n, "host": f"{n}.example"} for n in names],
        },
        base=tmp_path,
    )


class Loader:
    """Hands out the given inventories (or raises the given errors) one load after the other."""

    def __init__(self, *results: Inventory | ConfigError) -> None:
        self.results = list(results)
        self.paths: list[str | None] = []

    def __call__(self, path: str | None) -> Inventory:
        self.paths.append(path)
        result = self.results.pop(0) if len(self.results) > 1 else self.results[0]
        if isinstance(result, ConfigError):
            raise result
        return result


@pytest.fixture
def make_app() -> Iterator[Callable[..., tuple[ExporterApp, FixtureRunner]]]:
    apps: list[ExporterApp] = []

    def make(
        loader: Loader, answers: dict[str, str | ProbeFailure]
    ) -> tuple[ExporterApp, FixtureRunner]:
        runner = FixtureRunner(answers)
        app = ExporterApp("servers.yml", load=loader, runner=lambda inv, pool: runner)
        apps.append(app)
        return app, runner

    yield make
    for app in apps:
        app.close()


def probe(app: ExporterApp, target: str) -> dict[str, float]:
    server, module = app.resolve(target, None)
    return samples(app.probe(server, module, None).text)


def own_metrics(app: ExporterApp) -> dict[str, float]:
    return samples(generate_latest(app.registry).decode())


def test_a_probe_parses_the_hosts_output_with_every_collector(
    tmp_path: Path, make_app: Any
) -> None:
    loader = Loader(inventory(tmp_path, "web1"))
    app, runner = make_app(loader, {"web1": CENTOS})
    values = probe(app, "web1")
    assert loader.paths == ["servers.yml"]
    assert values["stacksense_probe_success"] == 1
    assert values["node_load1"] == 0.12  # centos7's /proc/loadavg
    ok = {k: v for k, v in values.items() if k.startswith("stacksense_collector_success")}
    assert len(ok) == len(DEFAULT_COLLECTORS) and set(ok.values()) == {1}
    assert all(values[f'stacksense_probe_failure{{reason="{r}"}}'] == 0 for r in REASONS)
    [(name, script)] = runner.scripts
    assert name == "web1" and "/proc/loadavg" in script and f"{MARKER}end" in script
    assert own_metrics(app)['stacksense_probes_total{result="success"}'] == 1


def test_a_successful_probe_is_a_heartbeat(tmp_path: Path, make_app: Any) -> None:
    app, _ = make_app(Loader(inventory(tmp_path, "web1", "db1")), {"web1": CENTOS})
    assert own_metrics(app)['stacksense_heartbeat_age_seconds{server="web1"}'] == float("inf")
    before = time.time()
    probe(app, "web1")
    metrics = own_metrics(app)
    seen = metrics['stacksense_last_heartbeat_timestamp_seconds{server="web1",source="ssh"}']
    assert before <= seen <= time.time()
    assert metrics['stacksense_heartbeat_age_seconds{server="web1"}'] < 60
    assert metrics['stacksense_heartbeat_age_seconds{server="db1"}'] == float("inf")
    assert metrics["stacksense_inventory_servers"] == 2


def test_an_unreachable_host_fails_with_its_reason_and_no_heartbeat(
    tmp_path: Path, make_app: Any
) -> None:
    down = ProbeFailure("unreachable", "db1: SSH connection failed (ConnectionRefusedError)")
    app, _ = make_app(Loader(inventory(tmp_path, "db1")), {"db1": down})
    values = probe(app, "db1")
    assert values["stacksense_probe_success"] == 0
    assert values['stacksense_probe_failure{reason="unreachable"}'] == 1
    assert sum(values[f'stacksense_probe_failure{{reason="{r}"}}'] for r in REASONS) == 1
    info = next(k for k in values if k.startswith("stacksense_probe_last_error_info"))
    assert 'reason="unreachable"' in info and "ConnectionRefusedError" in info
    assert not any(k.startswith("node_") for k in values)
    metrics = own_metrics(app)
    assert metrics['stacksense_heartbeat_age_seconds{server="db1"}'] == float("inf")
    assert metrics['stacksense_probes_total{result="failure"}'] == 1
    last = app.prober.last_probes()["db1"]
    assert not last.success and last.reason == "unreachable"


def test_output_cut_short_is_a_command_failure(tmp_path: Path, make_app: Any) -> None:
    cut = CENTOS[: len(CENTOS) // 2]
    app, _ = make_app(Loader(inventory(tmp_path, "web1")), {"web1": cut})
    values = probe(app, "web1")
    assert values['stacksense_probe_failure{reason="command"}'] == 1
    assert own_metrics(app)['stacksense_heartbeat_age_seconds{server="web1"}'] == float("inf")


def test_one_unparsable_collector_fails_the_probe_but_is_still_a_contact(
    tmp_path: Path, make_app: Any
) -> None:
    garbled = CENTOS.replace("/proc/loadavg:0.12 0.25 0.30", "/proc/loadavg:zero point twelve")
    assert garbled != CENTOS
    app, _ = make_app(Loader(inventory(tmp_path, "web1")), {"web1": garbled})
    values = probe(app, "web1")
    assert values['stacksense_probe_failure{reason="parse"}'] == 1
    assert values['stacksense_collector_success{collector="loadavg"}'] == 0
    assert values['stacksense_collector_success{collector="meminfo"}'] == 1
    assert "node_load1" not in values and "node_memory_MemTotal_bytes" in values
    assert own_metrics(app)['stacksense_heartbeat_age_seconds{server="web1"}'] < 60


def test_a_reload_drops_the_servers_that_left(tmp_path: Path, make_app: Any) -> None:
    loader = Loader(inventory(tmp_path, "web1", "db1"), inventory(tmp_path, "web1"))
    app, _ = make_app(loader, {"web1": CENTOS, "db1": CENTOS})
    probe(app, "web1")
    probe(app, "db1")
    app.reload()
    assert loader.paths == ["servers.yml", "servers.yml"]
    with pytest.raises(UnknownTarget):
        app.resolve("db1", None)
    metrics = own_metrics(app)
    assert metrics["stacksense_inventory_servers"] == 1
    assert not any('server="db1"' in k for k in metrics)
    assert set(app.prober.last_probes()) == {"web1"}
    assert probe(app, "web1")["stacksense_probe_success"] == 1


def test_a_reload_the_loader_refuses_keeps_the_inventory(tmp_path: Path, make_app: Any) -> None:
    loader = Loader(inventory(tmp_path, "web1"), ConfigError("servers.yml: invalid YAML"))
    app, _ = make_app(loader, {"web1": CENTOS})
    with pytest.raises(ConfigError, match="invalid YAML"):
        app.reload()
    metrics = own_metrics(app)
    assert metrics["stacksense_exporter_config_last_reload_successful"] == 0
    assert metrics["stacksense_inventory_servers"] == 1
    assert probe(app, "web1")["stacksense_probe_success"] == 1


def test_the_production_runner_is_ssh_with_an_inventory_and_local_without(tmp_path: Path) -> None:
    remote = inventory(tmp_path, "web1")
    pool = SshPool(remote)
    try:
        ssh = production_runner(remote, pool)
        assert isinstance(ssh, SshRunner) and ssh.pool is pool
        assert isinstance(production_runner(load_inventory(None), pool), LocalRunner)
    finally:
        pool.close()
