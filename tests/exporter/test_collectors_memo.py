"""Families reused when a collector's texts are unchanged, and only then."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from exporter.collectors import ProbeContext
from exporter.collectors._memo import Memo
from exporter.collectors.base import Collector
from exporter.config import Module
from exporter.exposition import Family, gauge
from exporter.heartbeats import HeartbeatStore
from exporter.probe import Prober
from exporter.ssh_pool import CommandResult
from tests.exporter.collector_helpers import HOST_NAMES, HOSTS


class CountingCollector:
    """A collector reading /proc/a and /sys/x/*/y that counts how often it really parses."""

    def __init__(self, name: str, memoizable: bool) -> None:
        self.calls = 0
        self.collector = Collector(
            name, self.collect, files=("/proc/a", "/sys/x/*/y"), memoizable=memoizable
        )

    def collect(self, sections: Mapping[str, str], ctx: ProbeContext) -> list[Family]:
        self.calls += 1
        fam = gauge("node_fake", "fake")
        for key, text in sorted(sections.items()):
            if key.startswith("/sys/x/"):
                fam.add(float(text), dev=key.split("/")[3])
        return [fam]


def fake_collector(name: str = "fake", memoizable: bool = True) -> CountingCollector:
    return CountingCollector(name, memoizable)


def run(module: CountingCollector, state: dict[str, Any], sections: dict[str, str]) -> list[Family]:
    memo = Memo(state, sections)
    built = memo.get(module.collector)
    if built is None:
        built = module.collector.collect(sections, ProbeContext("h", state=state))
        memo.put(module.collector, built)
    return built


def test_unchanged_texts_reuse_the_families() -> None:
    module = fake_collector()
    state: dict[str, Any] = {}
    secs = {"/proc/a": "1\n", "/sys/x/eth0/y": "5\n", "/proc/other": "changes"}
    run(module, state, secs)
    second = run(module, state, secs)  # the same texts twice: now worth remembering
    assert module.calls == 2
    third = run(module, state, {**secs, "/proc/other": "changed, not read by fake"})
    assert third is second and module.calls == 2
    assert all(family.frozen for family in third)  # render may keep their text


def test_a_changed_renamed_or_vanished_source_is_parsed_again() -> None:
    module = fake_collector()
    state: dict[str, Any] = {}
    for _ in range(2):
        run(module, state, {"/proc/a": "1\n", "/sys/x/eth0/y": "5\n"})
    run(module, state, {"/proc/a": "1\n", "/sys/x/eth0/y": "6\n"})
    assert module.calls == 3
    for _ in range(2):
        run(module, state, {"/proc/a": "1\n", "/sys/x/eth0/y": "6\n"})
    assert module.calls == 4  # remembered again once stable
    # Same text under a new device name: the labels differ, so no reuse.
    renamed = run(module, state, {"/proc/a": "1\n", "/sys/x/eth1/y": "6\n"})
    assert module.calls == 5 and 'dev="eth1"' in renamed[0].samples[0][0]
    run(module, state, {"/proc/a": "1\n"})
    assert module.calls == 6


def test_ever_changing_collectors_stop_being_remembered() -> None:
    module = fake_collector()
    state: dict[str, Any] = {}
    for value in range(3):
        run(module, state, {"/proc/a": f"{value}\n"})
    for _ in range(3):
        run(module, state, {"/proc/a": "2\n"})  # stable again, but it is volatile now
    assert module.calls == 6
    assert state["_memo"]["fake"].texts is None  # no copy of its texts kept


def test_texts_are_kept_only_once_seen_twice() -> None:
    module = fake_collector()
    state: dict[str, Any] = {}
    run(module, state, {"/proc/a": "1\n"})
    assert state["_memo"]["fake"].texts is None and state["_memo"]["fake"].families is None


def test_collectors_that_need_the_previous_probe_are_never_reused() -> None:
    module = fake_collector(memoizable=False)
    state: dict[str, Any] = {}
    for _ in range(3):
        run(module, state, {"/proc/a": "1\n"})
    assert module.calls == 3


class Canned:
    def __init__(self, output: str) -> None:
        self.output = output

    def run(
        self,
        server: object,
        command: str,
        deadline: float,
        *,
        max_output: int = 0,
        prelude: str = "",
    ) -> CommandResult:
        return CommandResult(0, self.output)

    def connection_id(self, server: object) -> int:
        return 0


class Target:
    name = "h"


def without_durations(text: str) -> str:
    return re.sub(r"(?m)^(\S*duration_seconds\S*) .*$", r"\1", text)


def probe_thrice(output: str) -> tuple[Prober, str]:
    prober = Prober(Canned(output), HeartbeatStore())
    for _ in range(2):
        prober.probe(Target(), Module("default"), 10.0)  # type: ignore[arg-type]
    third = prober.probe(Target(), Module("default"), 10.0)  # type: ignore[arg-type]
    assert third.success
    return prober, without_durations(third.text)


def test_a_memoised_probe_renders_exactly_what_a_fresh_parse_does(monkeypatch) -> None:
    outputs = [(HOSTS / host / "probe.txt").read_text() for host in HOST_NAMES]
    with_memo = [probe_thrice(output) for output in outputs]
    for prober, _ in with_memo:
        memo = prober._state("h")["_memo"]  # noqa: SLF001 - the memo is what is under test
        assert memo["uname"].families is not None  # it was reused on the third probe
        assert "cpu" not in memo
    monkeypatch.setattr(Memo, "get", lambda self, collector: None)
    without = [probe_thrice(output)[1] for output in outputs]
    assert [text for _, text in with_memo] == without
