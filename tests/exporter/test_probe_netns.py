"""Hosts with their own addresses (network namespaces): down, blackholed, refused, jump host."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.exporter.harness import RunningExporter, running_exporter, samples, write_inventory
from tests.peers.netns import Network, netns_available, network, require_root
from tests.peers.sshd import Sshd, SshdKeys, sshd

FAIL = 'stacksense_probe_failure{{reason="{}"}}'
SCRAPE_TIMEOUT = 3.0

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def net(
    tmp_path_factory: pytest.TempPathFactory, ssh_keys: SshdKeys
) -> Iterator[tuple[Network, dict[str, Sshd]]]:
    require_root()
    if not netns_available():
        pytest.skip("network namespaces are not available here")
    with network(3) as netw, ExitStack() as stack:
        servers: dict[str, Sshd] = {}
        for i, host in enumerate(netw.hosts):
            servers[f"h{i}"] = stack.enter_context(
                sshd(
                    tmp_path_factory.mktemp(f"ns{i}"),
                    ssh_keys,
                    host=host.address,
                    port=22,
                    netns=host.name,
                )
            )
        # Reachable only from inside h0's namespace: its own loopback.
        servers["hidden"] = stack.enter_context(
            sshd(
                tmp_path_factory.mktemp("hidden"),
                ssh_keys,
                host="127.0.0.1",
                port=2222,
                netns=netw.hosts[0].name,
            )
        )
        yield netw, servers


@pytest.fixture
def exporter(
    tmp_path: Path, net: tuple[Network, dict[str, Sshd]], ssh_keys: SshdKeys
) -> Iterator[RunningExporter]:
    netw, servers = net
    known = tmp_path / "known_hosts"
    known.write_text("".join(s.known_hosts_line() for s in servers.values()))
    entries = [
        {"name": n, "host": s.host, "port": s.port, "connect_timeout_seconds": 2}
        for n, s in servers.items()
        if n != "hidden"
    ]
    entries.append({"name": "hidden", "host": "127.0.0.1", "port": 2222, "jump": "h0"})
    subnet = netw.gateway.rsplit(".", 1)[0]
    entries.append(
        {"name": "nobody", "host": f"{subnet}.99", "port": 22, "connect_timeout_seconds": 10}
    )
    inv = write_inventory(
        tmp_path / "servers.yml",
        entries,
        {"default": {"key_file": str(ssh_keys.client_key)}},
        known,
    )
    for host in netw.hosts:
        host.clear_firewall()
        host.link_up()
    with running_exporter(inv) as exp:
        yield exp


def probe(exp: RunningExporter, name: str, timeout: float = SCRAPE_TIMEOUT) -> dict[str, float]:
    return samples(exp.probe(name, timeout=timeout).text)


def test_jump_host_reaches_a_host_only_it_can_see(exporter: RunningExporter) -> None:
    values = probe(exporter, "hidden")
    assert values["stacksense_probe_success"] == 1, values


def test_link_down_is_a_timeout_within_the_deadline(exporter, net) -> None:
    netw, _ = net
    assert probe(exporter, "h1")["stacksense_probe_success"] == 1
    exporter.app.pool.close()  # force a fresh connection attempt
    netw.hosts[1].link_down()
    started = time.monotonic()
    values = probe(exporter, "h1")
    assert values[FAIL.format("timeout")] == 1
    assert time.monotonic() - started < SCRAPE_TIMEOUT


def test_blackholed_mid_session_then_recovers(exporter, net) -> None:
    netw, _ = net
    assert probe(exporter, "h1")["stacksense_probe_success"] == 1
    netw.hosts[1].drop_ssh()
    started = time.monotonic()
    values = probe(exporter, "h1")
    assert values[FAIL.format("timeout")] == 1, values
    assert time.monotonic() - started < SCRAPE_TIMEOUT
    # Meanwhile another host is unaffected.
    assert probe(exporter, "h2")["stacksense_probe_success"] == 1
    netw.hosts[1].clear_firewall()
    assert probe(exporter, "h1")["stacksense_probe_success"] == 1


def test_reset_is_refused(exporter, net) -> None:
    netw, _ = net
    netw.hosts[2].reject_ssh()
    values = probe(exporter, "h2")
    assert values[FAIL.format("refused")] == 1, values


def test_no_such_host_is_unreachable(exporter) -> None:
    values = probe(exporter, "nobody", timeout=15)
    assert values[FAIL.format("unreachable")] == 1, values
