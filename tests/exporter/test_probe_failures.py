"""Hosts that misbehave: garbage output, hangs, deadlines, and isolation between probes."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.exporter.harness import running_exporter, samples, server_entry, write_inventory
from tests.exporter.recording_runner import RecordingRunner
from tests.peers.sshd import Sshd, SshdKeys, sshd

FAIL = 'stacksense_probe_failure{{reason="{}"}}'

GARBAGE = "printf 'hello from a banner\\n\\001\\002 not what you asked for\\n'"
PARSE = (
    "printf '@@stacksense@@ files\\n/proc/loadavg:definitely not numbers\\n@@stacksense@@ end\\n'"
)
EXIT_1 = "printf '@@stacksense@@ end\\n'; exit 3"
HANG = "sleep 30"


@pytest.fixture(scope="module")
def misbehaving(
    tmp_path_factory: pytest.TempPathFactory, ssh_keys: SshdKeys
) -> Iterator[dict[str, Sshd]]:
    """sshd instances whose ForceCommand replaces whatever the exporter asks to run."""
    from contextlib import ExitStack

    with ExitStack() as stack:
        servers = {
            name: stack.enter_context(
                sshd(tmp_path_factory.mktemp(name), ssh_keys, extra=[f"ForceCommand {cmd}"])
            )
            for name, cmd in {
                "garbage": GARBAGE,
                "parse": PARSE,
                "exit": EXIT_1,
                "hang": HANG,
            }.items()
        }
        yield servers


@pytest.fixture
def recorder() -> RecordingRunner:
    """The exporter's runner: the production one, telling when a host's command started."""
    return RecordingRunner()


@pytest.fixture
def exporter(
    tmp_path: Path, misbehaving: dict[str, Sshd], ssh_server: Sshd, recorder: RecordingRunner
):
    known = tmp_path / "known_hosts"
    known.write_text("".join(s.known_hosts_line() for s in [*misbehaving.values(), ssh_server]))
    servers = [server_entry(n, s) for n, s in misbehaving.items()]
    servers.append(server_entry("good", ssh_server))
    inv = write_inventory(
        tmp_path / "servers.yml",
        servers,
        {"default": {"key_file": str(ssh_server.keys.client_key)}},
        known,
    )
    with running_exporter(inv, runner=recorder) as exp:
        yield exp


@pytest.mark.parametrize(
    "target,reason", [("garbage", "command"), ("parse", "parse"), ("exit", "command")]
)
def test_bad_output_is_a_reason_not_a_crash(exporter, target: str, reason: str) -> None:
    resp = exporter.probe(target)
    assert resp.status_code == 200
    values = samples(resp.text)
    assert values["stacksense_probe_success"] == 0
    assert values[FAIL.format(reason)] == 1
    if reason == "parse":
        assert values['stacksense_collector_success{collector="loadavg"}'] == 0


def test_hanging_host_respects_the_scrape_deadline(exporter) -> None:
    started = time.monotonic()
    values = samples(exporter.probe("hang", timeout=2.0).text)
    elapsed = time.monotonic() - started
    assert values[FAIL.format("timeout")] == 1
    assert elapsed < 2.0, f"probe took {elapsed:.2f}s for a 2s scrape timeout"


def test_hanging_host_never_delays_another(exporter, recorder: RecordingRunner) -> None:
    exporter.probe_samples("good")  # warm the pooled connection
    hang = threading.Thread(target=exporter.probe, args=("hang", 5.0))
    hang.start()
    try:
        # Let the hanging probe's command start first.
        assert recorder.started("hang").wait(10), "the hanging probe never ran its command"
        started = time.monotonic()
        values = exporter.probe_samples("good")
        assert values["stacksense_probe_success"] == 1
        assert time.monotonic() - started < 1.0
    finally:
        hang.join()


def test_parse_failure_names_the_collector(exporter) -> None:
    from tests.exporter.harness import error_info

    info = error_info(exporter.probe("parse").text)
    assert info["reason"] == info["detail"] == "parse"
    assert info["message"].startswith("parse: could not parse the output of collector ")
    assert "loadavg" in info["message"] and len(info["message"]) <= 200
