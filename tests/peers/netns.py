"""Test hosts with their own addresses: network namespaces on a private bridge.

Only addresses inside this machine are used (10.x on a bridge with no default
route and no forwarding), as ../shared/TOOLING.md prescribes. Names carry the
test run's pid so parallel runs never collide; teardown always runs.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass

import pytest


def require_root() -> None:
    """Skip the calling test unless it runs as root (namespaces, mounts, iptables need it)."""
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces)")


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["ip", *args], check=check, capture_output=True)


def netns_available() -> bool:
    if os.geteuid() != 0:
        return False
    name = f"ssprobe{os.getpid() % 100000}"
    ok = _ip("netns", "add", name, check=False).returncode == 0
    if ok:
        _ip("netns", "del", name, check=False)
    return ok


@dataclass
class NetnsHost:
    name: str  # namespace name
    address: str  # 10.x address inside it
    veth: str  # host side of the veth pair

    def exec(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            ["ip", "netns", "exec", self.name, *cmd], check=check, capture_output=True
        )

    def link_down(self) -> None:
        _ip("-n", self.name, "link", "set", "eth0", "down")

    def link_up(self) -> None:
        _ip("-n", self.name, "link", "set", "eth0", "up")

    def drop_ssh(self, port: int = 22) -> None:
        """Blackhole: drop incoming SSH packets (clients time out)."""
        self.exec("iptables", "-A", "INPUT", "-p", "tcp", "--dport", str(port), "-j", "DROP")

    def reject_ssh(self, port: int = 22) -> None:
        """Refuse: answer SSH with a TCP reset (clients fail at once)."""
        self.exec(
            "iptables",
            "-A",
            "INPUT",
            "-p",
            "tcp",
            "--dport",
            str(port),
            "-j",
            "REJECT",
            "--reject-with",
            "tcp-reset",
        )

    def clear_firewall(self) -> None:
        self.exec("iptables", "-F", "INPUT", check=False)


@dataclass
class Network:
    bridge: str
    gateway: str
    hosts: list[NetnsHost]


@contextmanager
def network(count: int, *, subnet: int | None = None) -> Iterator[Network]:
    """Create `count` namespaces 10.<subnet>.0.11.. on a bridge at 10.<subnet>.0.1."""
    tag = f"{os.getpid() % 100000}"
    subnet = subnet if subnet is not None else 200 + os.getpid() % 50
    bridge = f"brss{tag}"
    gateway = f"10.{subnet}.0.1"
    hosts: list[NetnsHost] = []
    try:
        _ip("link", "add", bridge, "type", "bridge")
        _ip("addr", "add", f"{gateway}/24", "dev", bridge)
        _ip("link", "set", bridge, "up")
        for i in range(count):
            name = f"ss{tag}h{i}"
            veth = f"vs{tag}h{i}"
            address = f"10.{subnet}.0.{11 + i}"
            _ip("netns", "add", name)
            hosts.append(NetnsHost(name, address, veth))
            _ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", name)
            _ip("link", "set", veth, "master", bridge, "up")
            _ip("-n", name, "link", "set", "lo", "up")
            _ip("-n", name, "addr", "add", f"{address}/24", "dev", "eth0")
            _ip("-n", name, "link", "set", "eth0", "up")
        yield Network(bridge, gateway, hosts)
    finally:
        for host in hosts:
            with suppress(Exception):
                _ip("netns", "del", host.name, check=False)
            with suppress(Exception):
                _ip("link", "del", host.veth, check=False)
        _ip("link", "del", bridge, check=False)
