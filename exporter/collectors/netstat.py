"""node_netstat_* from /proc/net/netstat, /proc/net/snmp and /proc/net/snmp6 (default fields)."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping

from exporter.collectors import ParseError, ProbeContext
from exporter.collectors._common import guarded
from exporter.collectors.base import Collector
from exporter.exposition import Family

NAME = "netstat"
FILES = ("/proc/net/netstat", "/proc/net/snmp", "/proc/net/snmp6")

# node_exporter's default --collector.netstat.fields (current release).
FIELDS = re.compile(
    r"^(.*_(InErrors|InErrs)|Ip_Forwarding|Ip(6|Ext)_(InOctets|OutOctets)|Icmp6?_(InMsgs|OutMsgs)"
    r"|TcpExt_(Listen.*|Syncookies.*|TCPSynRetrans|TCPTimeouts|TCPOFOQueue|TCPRcvQDrop)"
    r"|Tcp_(ActiveOpens|InSegs|OutSegs|OutRsts|PassiveOpens|RetransSegs|CurrEstab)"
    r"|Udp6?_(InDatagrams|OutDatagrams|NoPorts|RcvbufErrors|SndbufErrors))$"
)
SNMP6_PROTOCOLS = ("UdpLite6", "Icmp6", "Udp6", "Ip6")  # longest prefix first


def _valid_name(name: str) -> bool:
    return name.isascii() and name.replace("_", "").isalnum()


@functools.lru_cache(maxsize=64)
def _selected(header: str) -> tuple[tuple[int, str], ...]:
    """(column, key) of the wanted fields of one header line; headers repeat every probe."""
    names = header.split()
    protocol = names[0][:-1]
    selected = []
    for index, name in enumerate(names[1:], start=1):
        key = f"{protocol}_{name}"
        if FIELDS.match(key) and _valid_name(key):
            selected.append((index, key))
    return tuple(selected)


@guarded("/proc/net/netstat")
def parse(text: str) -> dict[str, float]:
    """Header/value line pairs (`TcpExt: A B` / `TcpExt: 1 2`): the default fields only."""
    out: dict[str, float] = {}
    lines = [line for line in text.split("\n") if line.strip()]
    if len(lines) % 2:
        raise ParseError("netstat: header and value lines do not pair up")
    for header, values in zip(lines[::2], lines[1::2], strict=True):
        protocol, sep, _ = header.partition(" ")
        numbers = values.split()
        if not sep or protocol != numbers[0] or not protocol.endswith(":"):
            raise ParseError(f"netstat: mismatched lines for {protocol[:20]!r}")
        if header.count(" ") != values.count(" ") and len(header.split()) != len(numbers):
            raise ParseError(f"netstat: {protocol[:20]!r} header and values differ in length")
        for index, key in _selected(header):
            out[key] = float(numbers[index])
    return out


@functools.lru_cache(maxsize=512)
def _snmp6_key(name: str) -> str | None:
    """`Ip6InOctets` -> `Ip6_InOctets` when it is a default field, else None."""
    for protocol in SNMP6_PROTOCOLS:
        if name.startswith(protocol):
            key = f"{protocol}_{name[len(protocol) :]}"
            return key if FIELDS.match(key) and _valid_name(key) else None
    return None


@guarded("/proc/net/snmp6")
def parse_snmp6(text: str) -> dict[str, float]:
    """`Ip6InOctets  123` lines into `{Ip6_InOctets: 123}`."""
    out: dict[str, float] = {}
    for line in text.split("\n"):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2:
            raise ParseError(f"snmp6: unexpected line {line[:60]!r}")
        key = _snmp6_key(parts[0])
        if key is not None:
            out[key] = float(parts[1])
    return out


def collect(sections: Mapping[str, str], ctx: ProbeContext) -> list[Family]:
    """This probe's metric families, built fresh from its sections."""
    fields: dict[str, float] = {}
    for path in ("/proc/net/netstat", "/proc/net/snmp"):
        if path in sections:
            fields.update(parse(sections[path]))
    if "/proc/net/snmp6" in sections:
        fields.update(parse_snmp6(sections["/proc/net/snmp6"]))
    return [
        Family(
            f"node_netstat_{key}", "untyped", f"Statistic {key.replace('_', '')}.", [("", value)]
        )
        for key, value in sorted(fields.items())
    ]


COLLECTOR = Collector(NAME, collect, files=FILES)
