"""Collectors against garbage, promtool's linter and the real host they run on."""

from __future__ import annotations

import importlib
import random
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter.collectors import ParseError, ProbeContext, registry
from exporter.collectors.base import Collector
from exporter.command import READ_FILES, build_script, completed, split_sections
from exporter.exposition import Family, render
from tests.exporter.collector_helpers import HOST_NAMES, Samples, collect_all, sections
from tests.peers.prometheus import PROMTOOL

METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
# promtool's lint findings that node_exporter's own names get: the names must stay as
# node_exporter spells them (dashboards query them), so these and only these are accepted.
INHERITED_LINTS = (
    (
        re.compile(r"^node_(memory|netstat|sockstat|vmstat)_\w+$"),
        "should be written in 'snake_case'",
    ),
    (re.compile(r"^node_entropy_\w+_bits$"), 'use base unit "bytes" instead of "bits"'),
)


def concrete(path: str) -> str:
    """A real-looking path for a files glob (`/sys/class/net/*/mtu` -> `.../eth0/mtu`)."""
    return path.replace("cpu*", "cpu3").replace("*", "eth0")


def garbage_texts(rnd: random.Random, donor: str) -> Iterator[str]:
    """Kinds of wrong input a host can send: noise, binary, truncation, mutated numbers."""
    yield ""
    yield "\n\n\n"
    yield "".join(rnd.choice("abc:=/ \t\n0123456789-.\\\"'{}") for _ in range(rnd.randint(1, 400)))
    yield bytes(rnd.randrange(256) for _ in range(300)).decode("latin-1")
    yield donor[: rnd.randint(0, len(donor))]
    tokens = donor.split(" ")
    for _ in range(3):
        mutated = list(tokens)
        for _ in range(max(1, len(mutated) // 5)):
            i = rnd.randrange(len(mutated))
            mutated[i] = rnd.choice(
                ["NaN", "inf", "-1", "1e400", "9" * 40, "", "x", ":", "é", "\x00", "0x", "-"]
            )
        yield " ".join(mutated)
    for _ in range(12):  # a character or two changed inside a name or a number
        chars = list(donor)
        for _ in range(rnd.randint(1, 2)):
            chars[rnd.randrange(len(chars))] = rnd.choice('-é(.#"\\{}\n/ 9x')
        yield "".join(chars)
    lines = donor.split("\n")
    rnd.shuffle(lines)
    yield "\n".join(lines)


def check_result(collector: Collector, secs: dict[str, str]) -> None:
    """A collector either raises ParseError or returns families that render validly."""
    try:
        families = collector.collect(secs, ProbeContext(target="fuzz"))
    except ParseError:
        return
    assert isinstance(families, list)
    assert all(isinstance(f, Family) for f in families)
    for family in families:
        assert METRIC_NAME.match(family.name), family.name
    text = render(families)
    list(text_string_to_metric_families(text))  # must be valid exposition


@pytest.mark.parametrize("name", list(registry.COLLECTORS))
def test_garbage_gives_parse_error_or_valid_output(name: str) -> None:
    collector = registry.COLLECTORS[name]
    donors = sections("ubuntu2204-server64")
    paths = [concrete(p) for p in collector.files]
    paths += list(collector.sections)
    rnd = random.Random(name)
    real = {p: donors[p] for p in donors if p in paths or p.startswith(("/sys/", "/proc/"))}
    for path in paths:
        donor = donors.get(path) or "cpu0 1 2 3 4 5 6 7 8\nMemTotal: 12 kB\nTCP: inuse 1"
        for text in garbage_texts(rnd, donor):
            check_result(collector, {**real, path: text})  # one bad file among good ones
            check_result(collector, dict.fromkeys(paths, text))  # everything bad
    check_result(collector, {})  # nothing read at all


def test_missing_core_file_is_a_parse_error() -> None:
    secs = sections("centos7")
    del secs["/proc/stat"]
    with pytest.raises(ParseError, match="/proc/stat missing"):
        registry.COLLECTORS["cpu"].collect(secs, ProbeContext(target="x"))


@pytest.mark.parametrize("host", HOST_NAMES)
def test_promtool_check_metrics(host: str) -> None:
    text = render(collect_all(sections(host)))
    result = subprocess.run(
        [PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )
    findings = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    unexpected = []
    for line in findings:
        metric, _, message = line.partition(" ")
        if not any(p.match(metric) and m in message for p, m in INHERITED_LINTS):
            unexpected.append(line)
    assert not unexpected, "\n".join(unexpected)
    # our own series are lint-clean on their own
    own = render(f for f in collect_all(sections(host)) if f.name.startswith("stacksense_"))
    result = subprocess.run(
        [PROMTOOL, "check", "metrics"], input=own, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_real_host_round_trip_twice() -> None:
    """The round-trip command on this machine, through /bin/sh, as a probe runs it over SSH."""
    script = build_script(registry.COLLECTORS.values())
    ctx = ProbeContext(target="localhost")
    results = []
    for _ in range(2):
        output = subprocess.run(
            ["/bin/sh", "-c", script], capture_output=True, text=True, timeout=30
        ).stdout
        assert completed(output)
        secs = split_sections(output)
        results.append(Samples(render(collect_all(secs, ctx))))
    first, second = results
    assert first.get("stacksense_cpu_usage_ratio") is None  # no previous counters yet
    ratio = second["stacksense_cpu_usage_ratio"]
    assert 0 <= ratio <= 1
    assert "/" in second.labels("node_filesystem_size_bytes", "mountpoint")
    assert second["node_memory_MemTotal_bytes"] > 0
    assert second["node_time_seconds"] > second["node_boot_time_seconds"] > 1e9
    assert second.labels("node_uname_info", "sysname") == {"Linux"}


def test_round_trip_script_reads_each_file_once() -> None:
    script = build_script(registry.COLLECTORS.values())
    files_line = next(line for line in script.splitlines() if READ_FILES in line)
    paths = files_line.split(READ_FILES + " ", 1)[1].split(" 2>/dev/null")[0].split()
    assert len(paths) == len(set(paths))
    assert "/proc/stat" in paths and "/proc/meminfo" in paths
    assert script.count("df -B1") == 1  # one df for the filesystem collector


def test_every_collector_module_is_registered_and_default() -> None:
    package = Path(registry.__file__).parent
    modules = {
        p.stem
        for p in package.glob("*.py")
        if p.stem not in ("__init__", "registry", "base", "_common", "_memo")
    }
    registered = {c.collect.__module__.rsplit(".", 1)[1] for c in registry.COLLECTORS.values()}
    assert registered == modules
    assert len(registered) == len(registry.COLLECTORS)  # one collector per module
    assert registry.DEFAULT_COLLECTORS == tuple(registry.COLLECTORS)
    for name, collector in registry.COLLECTORS.items():
        assert isinstance(collector, Collector) and collector.name == name
        module = importlib.import_module(collector.collect.__module__)
        assert module.COLLECTOR is collector
        assert callable(module.parse)
        assert collector.files or collector.sections
