"""Diagnostics over a real sshd: the busy process and the full filesystem are named,
a hung command costs only its section, and the API refuses what it should."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import requests

from exporter.diagnose import (
    DEADLINE,
    SCRIPT,
    SECTION_BYTES,
    Diagnoser,
    parse,
    split_sections,
)
from exporter.recommend import Finding, RuleRecommender
from tests.exporter.harness import (
    RunningExporter,
    running_exporter,
    server_entry,
    write_inventory,
)
from tests.peers.netns import require_root
from tests.peers.sshd import SshdKeys, sshd

HOG = "ss-memhog"
# Names itself (prctl PR_SET_NAME: ps's comm) and holds 400 MiB touched, until killed: the
# loopback host is this machine, whose other processes (other tests' peers) must not
# push it out of the top five.
HOG_CODE = (
    "import ctypes, time; ctypes.CDLL(None).prctl(15, b'" + HOG + "', 0, 0, 0); "
    "x = bytearray(400 << 20); x[::4096] = b'x' * len(x[::4096]); print('ok', flush=True); "
    "time.sleep(120)"
)


@contextlib.contextmanager
def exporter_with(
    tmp_path: Path,
    ssh_keys: SshdKeys,
    *,
    fake: dict[str, str] | None = None,
    token: str | None = None,
) -> Iterator[RunningExporter]:
    extra = []
    if fake:
        fake_bin = tmp_path / "bin"
        fake_bin.mkdir()
        for name, script in fake.items():
            (fake_bin / name).write_text(script)
            (fake_bin / name).chmod(0o755)
        extra = [f"SetEnv PATH={fake_bin}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"]
    with sshd(tmp_path / "sshd", ssh_keys, extra=extra) as server:
        known = tmp_path / "known_hosts"
        known.write_text(server.known_hosts_line())
        agent = {"name": "agent1", "mode": "push", "push_token_hash": "sha256:" + "0" * 64}
        inv = write_inventory(
            tmp_path / "servers.yml",
            [server_entry("web1", server), agent],
            {"default": {"key_file": str(ssh_keys.client_key)}},
            known,
        )
        options = {}
        if token:
            (tmp_path / "token").write_text(token + "\n")
            options["api_token_file"] = tmp_path / "token"
        with running_exporter(inv, server_options=options) as exp:
            yield exp


@pytest.fixture
def hog() -> Iterator[int]:
    proc = subprocess.Popen([sys.executable, "-c", HOG_CODE], stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline().startswith(b"ok")
    yield proc.pid
    proc.kill()
    proc.wait()
    proc.stdout.close()


@pytest.fixture
def full_tmpfs(tmp_path: Path) -> Iterator[Path]:
    require_root()
    mount = tmp_path / "full"
    (mount).mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)], check=True)
    try:
        (mount / "dumps").mkdir()
        # Past the size, write() fails: the filesystem is then 100 % used.
        with contextlib.suppress(OSError), open(mount / "dumps" / "core.1", "wb") as f:
            for _ in range(9):
                f.write(b"\0" * (1 << 20))
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_names_the_memory_hog_and_the_full_filesystem(
    tmp_path: Path, ssh_keys: SshdKeys, hog: int, full_tmpfs: Path
) -> None:
    with exporter_with(tmp_path, ssh_keys, token="t0ken") as exp:
        resp = requests.post(
            f"{exp.url}/api/v1/diagnose/web1",
            timeout=30,
            headers={"Authorization": "Bearer t0ken"},
            json={"labels": {"alertname": "HostDiskFull"}},
        )
        assert resp.status_code == 200, resp.text
        report = resp.json()
        # Probes still work on the pooled connection afterwards.
        assert exp.probe_samples("web1")["stacksense_probe_success"] == 1
    assert report["complete"], report
    assert any(
        p["command"] == HOG and p["pid"] == hog for p in report["processes"]["by_memory"][:5]
    ), report["processes"]
    fs = next(f for f in report["filesystems"] if f["mountpoint"] == str(full_tmpfs))
    assert fs["used_percent"] == 100
    assert any(x["path"] == f"{full_tmpfs}/dumps" for x in fs["largest"]), fs
    assert report["memory"]["total_bytes"] > 0 and report["load"]["cpus"] >= 1
    assert report["listening"], "sshd itself listens"
    first = report["findings"][0]  # the alert is about disk: the disk finding comes first
    assert first["kind"] == "disk" and str(full_tmpfs) in first["text"], report["findings"]
    assert f"{full_tmpfs}/dumps" in first["text"]


def test_hung_command_costs_its_section_only(tmp_path: Path, ssh_keys: SshdKeys) -> None:
    with exporter_with(tmp_path, ssh_keys, fake={"ps": "#!/bin/sh\nsleep 60\n"}) as exp:
        started = time.monotonic()
        resp = requests.post(f"{exp.url}/api/v1/diagnose/web1", timeout=30)
        elapsed = time.monotonic() - started
    assert resp.status_code == 200, resp.text
    report = resp.json()
    assert elapsed < DEADLINE
    assert report["sections"]["ps_cpu"] == "timed_out"
    assert report["sections"]["ps_memory"] == "timed_out"
    assert report["sections"]["memory"] == "ok" and report["memory"]["total_bytes"] > 0
    assert not report["complete"] and set(report["timed_out"]) == {"ps_cpu", "ps_memory"}
    assert any(f["kind"] == "incomplete" and "ps_cpu" in f["text"] for f in report["findings"])


def test_api_refusals_are_4xx(tmp_path: Path, ssh_keys: SshdKeys) -> None:
    with exporter_with(tmp_path, ssh_keys, token="t0ken") as exp:
        url = f"{exp.url}/api/v1/diagnose"
        auth = {"Authorization": "Bearer t0ken"}
        assert requests.post(f"{url}/web1", timeout=10).status_code == 401
        assert (
            requests.post(
                f"{url}/web1", headers={"Authorization": "Bearer nope"}, timeout=10
            ).status_code
            == 401
        )
        assert requests.get(f"{url}/web1", headers=auth, timeout=10).status_code == 405
        assert requests.post(f"{url}/nosuch", headers=auth, timeout=10).status_code == 404
        assert requests.post(f"{url}/agent1", headers=auth, timeout=10).status_code == 409
        for body in (b"{", b"[1]", b'{"labels": {"a": 1}}', b"\xff"):
            resp = requests.post(f"{url}/web1", headers=auth, data=body, timeout=10)
            assert resp.status_code == 400, (body, resp.text)
        resp = requests.post(f"{url}/web1;rm%20-rf%20/", headers=auth, timeout=10)
        assert resp.status_code == 404


def test_a_cut_off_run_is_parsed_as_far_as_it_went() -> None:
    out = subprocess.run(
        ["/bin/sh", "-c", SCRIPT], capture_output=True, text=True, timeout=DEADLINE
    ).stdout
    cut = out[: out.index("@@ss-diag load")] + "@@ss-diag load\n|0.5 0.4"
    _, status = split_sections(cut)
    assert status["memory"] == "ok" and status["load"] == "incomplete"
    assert status["kernel"] == "missing"
    report = parse(cut)
    assert set(report["timed_out"]) == {"load"} and report["memory"]["total_bytes"] > 0


def test_kernel_log_unreadable_is_said() -> None:
    out = (
        "@@ss-diag kernel\n|@@unreadable dmesg: read kernel buffer failed: Operation not "
        "permitted\n@@ss-diag-end kernel 0\n"
    )
    report = parse(out)
    assert report["kernel"]["readable"] is False
    assert "Operation not permitted" in report["kernel"]["note"]
    findings = RuleRecommender().recommend({}, report)
    assert any("kernel log unreadable" in f.text for f in findings)


def test_memory_finding_names_the_processes_holding_it() -> None:
    gib = 1 << 30
    report = {
        "memory": {
            "total_bytes": 10 * gib,
            "available_bytes": 0.7 * gib,
            "used_ratio": 0.93,
            "oom_kills_since_boot": 3,
        },
        "processes": {
            "by_memory": [
                {"pid": 1, "user": "a", "command": "java", "rss_bytes": 4 * gib, "cpu_percent": 5},
                {"pid": 2, "user": "a", "command": "redis", "rss_bytes": 2 * gib, "cpu_percent": 1},
                {"pid": 3, "user": "a", "command": "nginx", "rss_bytes": 1 * gib, "cpu_percent": 1},
            ],
            "by_cpu": [],
        },
        "failed_units": [{"unit": "backup.service", "description": "Nightly backup"}],
        "kernel": {"oom_lines": ["Out of memory: Killed process 9 (java)"]},
    }
    findings = RuleRecommender().recommend({"alertname": "HostMemoryHigh"}, report)
    texts = [f.text for f in findings]
    assert texts[0] == (
        "memory is 93 % used: the top 3 processes hold 70 % of it (java, redis, nginx)"
    )
    assert "unit backup.service failed" in texts
    assert "3 OOM kills since boot" in texts
    assert all(f.action and f.evidence for f in findings)


def test_cli_prints_the_report_from_the_exporter_and_directly(
    tmp_path: Path, ssh_keys: SshdKeys, hog: int, capsys: pytest.CaptureFixture[str]
) -> None:
    from exporter.stacksense_cli import main

    with exporter_with(tmp_path, ssh_keys, token="t0ken") as exp:
        assert (
            main(
                ["diagnose", "web1", "--exporter", exp.url, "--token-file", str(tmp_path / "token")]
            )
            == 0
        )
        via_api = capsys.readouterr().out
        assert main(["diagnose", "web1", "--exporter", exp.url]) == 1  # no token: 401
        assert "401" in capsys.readouterr().err
        assert (
            main(
                [
                    "diagnose",
                    "web1",
                    "--direct",
                    "--inventory",
                    str(tmp_path / "servers.yml"),
                    "--json",
                ]
            )
            == 0
        )
        direct = json.loads(capsys.readouterr().out)
    assert via_api.startswith("web1: diagnostics in ") and "Findings:" in via_api
    assert HOG in via_api.split("Top memory:")[1]
    assert any(p["command"] == HOG for p in direct["processes"]["by_memory"])
    assert "findings" in direct


def test_host_output_cannot_forge_a_section_end() -> None:
    out = (
        "@@ss-diag units\n|@@ss-diag-end units 0\n|@@ss-diag kernel\n"
        "|x.service loaded failed failed @@ss-diag-end\n@@ss-diag-end units 0\n"
    )
    lines, status = split_sections(out)
    assert status["units"] == "ok" and status["kernel"] == "missing"
    assert len(lines["units"]) == 3


def test_configured_logs_last_matching_lines_are_in_the_report(
    tmp_path: Path, ssh_keys: SshdKeys
) -> None:
    from tests.exporter.harness import exporter_for

    log = tmp_path / "app.log"
    log.write_text("")
    module = {"logs": [{"file": str(log), "patterns": {"error": "ERROR"}}]}
    with (
        sshd(tmp_path / "sshd", ssh_keys) as server,
        exporter_for(tmp_path, ssh_keys, server, module) as exp,
    ):
        assert exp.probe_samples("h")["stacksense_probe_success"] == 1
        log.write_text("ERROR disk quota exceeded token=abc123secret\n")
        assert exp.probe_samples("h")["stacksense_probe_success"] == 1
        report = requests.post(f"{exp.url}/api/v1/diagnose/h", timeout=30).json()
    line = report["log_matches"][str(log)]["error"]
    assert line.startswith("ERROR disk quota exceeded") and "abc123secret" not in line
    [finding] = [f for f in report["findings"] if f["kind"] == "log"]
    assert str(log) in finding["text"] and finding["evidence"] == [f"{log} [error]: {line}"]


def run_script(fake: dict[str, str], tmp_path: Path) -> str:
    """SCRIPT on this machine with `fake` commands first on PATH; its raw output."""
    fake_bin = tmp_path / "fake-bin"
    fake_bin.mkdir()
    for name, script in fake.items():
        (fake_bin / name).write_text(script)
        (fake_bin / name).chmod(0o755)
    env = {"PATH": f"{fake_bin}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"}
    return subprocess.run(
        ["/bin/sh", "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=DEADLINE
    ).stdout


def test_du_never_crosses_into_another_filesystem(full_tmpfs: Path) -> None:
    # A bigger filesystem mounted inside the full one: its 20 MiB must not be counted.
    inner = full_tmpfs / "archive"
    inner.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(inner)], check=True)
    try:
        with open(inner / "big", "wb") as f:
            f.write(b"\0" * (20 << 20))
        out = subprocess.run(
            ["/bin/sh", "-c", SCRIPT], capture_output=True, text=True, timeout=DEADLINE
        ).stdout
    finally:
        subprocess.run(["umount", "-l", str(inner)], check=False)
    fs = next(f for f in parse(out)["filesystems"] if f["mountpoint"] == str(full_tmpfs))
    sizes = {x["path"]: x["bytes"] for x in fs["largest"]}
    assert str(inner) not in sizes, sizes
    assert sizes[str(full_tmpfs)] <= 8 << 20 and f"{full_tmpfs}/dumps" in sizes


def test_du_runs_niced_and_in_the_idle_io_class(tmp_path: Path) -> None:
    # A full filesystem (fake df) so that du runs; the fake du reports how it was started.
    df = (
        "#!/bin/sh\necho 'Filesystem 1024-blocks Used Available Capacity Mounted on'\n"
        "echo '/dev/vdb 1000 990 10 99% /srv'\n"
    )
    du = (
        "#!/bin/sh\nprintf '%s\\t/niceness\\n' \"$(nice)\"\n"
        "case \"$(ionice)\" in idle*) c=3;; *) c=0;; esac\nprintf '%s\\t/ioclass\\n' $c\n"
    )
    [fs] = parse(run_script({"df": df, "du": du}, tmp_path))["filesystems"]
    assert fs["mountpoint"] == "/srv" and fs["used_percent"] == 99
    got = {x["path"]: x["bytes"] // 1024 for x in fs["largest"]}
    assert got == {"/niceness": 19, "/ioclass": 3}


def test_a_section_that_prints_without_end_is_cut_on_the_host(tmp_path: Path) -> None:
    # One endless line (head -n cannot stop it): the host cuts the section at SECTION_BYTES.
    out = run_script({"ss": "#!/bin/sh\nexec tr '\\0' x < /dev/zero\n"}, tmp_path)
    lines, status = split_sections(out)
    section = out[out.index("@@ss-diag ports\n") : out.index("@@ss-diag-end ports")]
    assert SECTION_BYTES < len(section) < SECTION_BYTES + 100  # the marker and the prefix
    assert status["ports"] == "ok" and status["kernel"] == "ok"  # the rest still ran
    assert all(len(line) <= 500 for line in lines["ports"])


def test_alert_labels_never_reach_the_host(tmp_path: Path, ssh_keys: SshdKeys) -> None:
    mark = tmp_path / "pwned"
    evil = f"$(touch {mark}); touch {mark}; `touch {mark}`"
    with exporter_with(tmp_path, ssh_keys) as exp:
        resp = requests.post(
            f"{exp.url}/api/v1/diagnose/web1",
            timeout=30,
            json={"labels": {"alertname": evil, evil: evil}},
        )
    assert resp.status_code == 200, resp.text
    assert not mark.exists()


def test_a_failing_recommender_costs_the_findings_only(tmp_path: Path, ssh_keys: SshdKeys) -> None:
    class Broken:
        def recommend(
            self, alert_labels: Mapping[str, str], diagnostics: Mapping[str, Any]
        ) -> list[Finding]:
            raise KeyError("oops")

    with exporter_with(tmp_path, ssh_keys) as exp:
        assert exp.server is not None
        exp.server.diagnose.recommender = Broken()
        resp = requests.post(f"{exp.url}/api/v1/diagnose/web1", timeout=30)
    assert resp.status_code == 200, resp.text
    report = resp.json()
    assert report["memory"]["total_bytes"] > 0
    [finding] = report["findings"]
    assert finding["kind"] == "incomplete" and "recommender failed (KeyError)" in finding["text"]


def test_a_run_cut_by_the_deadline_keeps_what_arrived(tmp_path: Path, ssh_keys: SshdKeys) -> None:
    # df hangs (a dead mount): the disk section's own budget is longer than this deadline,
    # so the whole run is cut while it waits; the sections before it are kept.
    with exporter_with(tmp_path, ssh_keys, fake={"df": "#!/bin/sh\nexec sleep 60\n"}) as exp:
        server, _ = exp.app.resolve("web1", None)
        started = time.monotonic()
        report = Diagnoser(exp.app.pool).diagnose(server, deadline_seconds=2.5)
        elapsed = time.monotonic() - started
    assert 2.5 <= elapsed < 4.0, elapsed
    assert report["error"] == "the diagnostic run did not finish within 2.5s"
    assert not report["complete"]
    assert report["sections"]["memory"] == "ok" and report["memory"]["total_bytes"] > 0
    assert report["sections"]["ps_cpu"] == "ok" and report["processes"]["by_cpu"]
    assert report["sections"]["disk"] == "incomplete" and "disk" in report["timed_out"]
    assert report["sections"]["units"] == "missing"
