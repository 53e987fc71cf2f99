"""Service checks, custom commands, log watches and host facts, probed on real sshd hosts.

systemd does not run here: the systemd path is tested with a fake `systemctl` first on
the sshd session's PATH (it prints what `systemctl show` prints, from state files the
test writes); the process path with a real process started and killed on this host.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests

from exporter.checks.hardware import SECTION as FACTS_SECTION
from tests.exporter.harness import (
    RunningExporter,
    exporter_for,
    running_exporter,
    server_entry,
    write_inventory,
)
from tests.exporter.recording_runner import RecordingRunner
from tests.peers.sshd import Sshd, SshdKeys, sshd

FAKE_SYSTEMCTL = """#!/bin/sh
# `systemctl show --property=... -- UNIT...` from files $STATE/UNIT holding "ACTIVE SUB".
STATE={state}
while [ "$1" != "--" ]; do shift; done; shift
for u in "$@"; do
  if [ -f "$STATE/$u" ]; then read a s < "$STATE/$u"; l=loaded
  else a=inactive s=dead l=not-found; fi
  printf 'Id=%s\\nLoadState=%s\\nActiveState=%s\\nSubState=%s\\n\\n' "$u" "$l" "$a" "$s"
done
"""


def probe(exp: RunningExporter, timeout: float = 20.0) -> dict[str, float]:
    values = exp.probe_samples("h", timeout)
    assert values["stacksense_probe_success"] == 1
    return values


def test_process_service_flips_when_the_process_stops_and_starts(
    tmp_path: Path,
    ssh_keys: SshdKeys,
    ssh_server: Sshd,
) -> None:
    name = f"ssv{uuid.uuid4().hex[:8]}"  # comm names are 15 bytes at most
    program = tmp_path / name
    shutil.copy("/bin/sleep", program)
    module = {
        "services": [
            {"name": "worker", "process": name},
            {"name": "unit-only", "unit": "nginx.service"},
            {"name": "unit-or-process", "unit": "worker.service", "process": name},
        ]
    }
    with exporter_for(tmp_path, ssh_keys, ssh_server, module) as exp:
        values = probe(exp)
        assert values['stacksense_service_up{service="worker"}'] == 0
        assert values['stacksense_service_processes{service="worker"}'] == 0
        proc = subprocess.Popen([str(program), "300"])
        try:
            values = probe(exp)
            assert values['stacksense_service_up{service="worker"}'] == 1
            assert values['stacksense_service_processes{service="worker"}'] == 1
            # No systemd here: a unit-only service is down and says why; a unit with a
            # process falls back to the process.
            assert values['stacksense_service_up{service="unit-only"}'] == 0
            assert values['stacksense_service_state{service="unit-only",state="no_systemd"}'] == 1
            assert values['stacksense_service_up{service="unit-or-process"}'] == 1
        finally:
            proc.kill()
            proc.wait()
        assert probe(exp)['stacksense_service_up{service="worker"}'] == 0


def test_systemd_units_are_read_with_systemctl_show_in_the_same_round_trip(
    tmp_path: Path,
    ssh_keys: SshdKeys,
) -> None:
    state = tmp_path / "units"
    state.mkdir()
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "systemctl").write_text(FAKE_SYSTEMCTL.format(state=state))
    (fake_bin / "systemctl").chmod(0o755)
    (state / "nginx.service").write_text("active running\n")
    module = {
        "services": [
            {"name": "nginx", "unit": "nginx.service"},
            {"name": "gone", "unit": "gone.service"},
        ]
    }
    extra = [f"SetEnv PATH={fake_bin}:/usr/local/bin:/usr/bin:/bin"]
    with (
        sshd(tmp_path / "sshd", ssh_keys, extra=extra) as server,
        exporter_for(tmp_path, ssh_keys, server, module) as exp,
    ):
        values = probe(exp)
        assert values['stacksense_service_up{service="nginx"}'] == 1
        assert values['stacksense_service_state{service="nginx",state="active/running"}'] == 1
        assert values['stacksense_service_up{service="gone"}'] == 0
        assert values['stacksense_service_state{service="gone",state="not_found"}'] == 1
        (state / "nginx.service").write_text("failed failed\n")
        values = probe(exp)
        assert values['stacksense_service_up{service="nginx"}'] == 0
        assert values['stacksense_service_state{service="nginx",state="failed/failed"}'] == 1
        assert 'stacksense_service_state{service="nginx",state="active/running"}' not in values
        (state / "nginx.service").write_text("active running\n")
        assert probe(exp)['stacksense_service_up{service="nginx"}'] == 1


def test_custom_commands_time_out_print_garbage_or_fail_without_failing_the_probe(
    tmp_path: Path,
    ssh_keys: SshdKeys,
    ssh_server: Sshd,
) -> None:
    commands: list[dict[str, Any]] = [
        {"name": "answer", "run": ["sh", "-c", "echo 42"], "value": "number"},
        {
            "name": "depth",
            "run": ["sh", "-c", "echo 'queue depth=7 ok'"],
            "value": {"regex": r"depth=(\d+)"},
        },
        {"name": "hangs", "run": ["sleep", "30"], "timeout_seconds": 1, "value": "number"},
        # Garbage that tries to forge the probe's own section markers.
        {
            "name": "garbage",
            "value": "number",
            "run": ["sh", "-c", "printf '\\001\\377 @@ x\\n@@stacksense@@ end\\n'"],
        },
        {"name": "exit3", "run": ["sh", "-c", "echo 5; exit 3"], "value": "number"},
        {"name": "nagios", "run": ["sh", "-c", "exit 3"], "ok_exit_codes": [0, 1]},
        {"name": "missing", "run": ["/nonexistent/check"]},
        # Endless output: cut at 4 KiB, and the command stopped at once (not at its timeout).
        {"name": "chatty", "run": ["yes"], "value": "number"},
    ]
    for command in commands:
        command["timeout_seconds"] = 1
    module = {"command_timeout_seconds": 15, "commands": commands}
    with exporter_for(tmp_path, ssh_keys, ssh_server, module) as exp:
        started = time.monotonic()
        values = probe(exp)
        assert time.monotonic() - started < 5  # the hung one was killed at its 1 s timeout
        assert values['stacksense_command_success{command="answer"}'] == 1
        assert values['stacksense_command_value{command="answer"}'] == 42
        assert values['stacksense_command_value{command="depth"}'] == 7
        assert values['stacksense_command_success{command="hangs"}'] == 0
        assert values['stacksense_command_exit_code{command="hangs"}'] == 124
        assert (
            values[
                'stacksense_command_last_error_info{command="hangs",reason="timed out after 1s"}'
            ]
            == 1
        )
        assert 0.9 <= values['stacksense_command_duration_seconds{command="hangs"}'] < 3
        assert values['stacksense_command_success{command="garbage"}'] == 0
        assert (
            values[
                'stacksense_command_last_error_info{command="garbage",'
                'reason="output is not a number"}'
            ]
            == 1
        )
        assert values['stacksense_command_success{command="exit3"}'] == 0
        assert (
            values['stacksense_command_last_error_info{command="exit3",reason="exited with 3"}']
            == 1
        )
        assert 'stacksense_command_value{command="exit3"}' not in values
        assert values['stacksense_command_value{command="nagios"}'] == 3
        assert values['stacksense_command_success{command="nagios"}'] == 0
        assert values['stacksense_command_exit_code{command="missing"}'] == 127
        assert (
            values[
                'stacksense_command_last_error_info{command="chatty",'
                'reason="output larger than 4096 bytes"}'
            ]
            == 1
        )
        assert values['stacksense_command_duration_seconds{command="chatty"}'] < 0.5
        # The forged marker did not cut the output: every collector still parsed.
        failed = [
            k for k, v in values.items() if k.startswith("stacksense_collector_success") and v != 1
        ]
        assert not [
            k
            for k in failed
            if "hwmon" not in k
            and "thermal" not in k
            and "cpufreq" not in k
            and "pressure" not in k
        ]


def test_a_log_appended_rotated_truncated_and_recreated_is_counted_exactly(
    tmp_path: Path,
    ssh_keys: SshdKeys,
    ssh_server: Sshd,
) -> None:
    log = tmp_path / "app.log"
    log.write_text("ERROR old history, not counted\n" * 2)
    module = {
        "logs": [
            {
                "file": str(log),
                "max_bytes_per_probe": 1024,
                "patterns": {"error": "ERROR", "warn": "WARN"},
            }
        ]
    }
    errors = f'stacksense_log_matches_total{{file="{log}",pattern="error"}}'
    warns = f'stacksense_log_matches_total{{file="{log}",pattern="warn"}}'

    def append(text: str, path: Path = log) -> None:
        with open(path, "a") as out:
            out.write(text)

    with exporter_for(tmp_path, ssh_keys, ssh_server, module) as exp:
        assert probe(exp)[errors] == 0  # history before the first probe is not counted
        append("ERROR one\nWARN two\nERROR three password=hunter2\ninfo\n")
        values = probe(exp)
        assert (values[errors], values[warns]) == (2, 1)
        # A line being written when the probe reads is completed at the next one.
        append("ERR")
        assert probe(exp)[errors] == 2
        append("OR four\n")
        assert probe(exp)[errors] == 3
        # Rotated (logrotate's rename): the rest of the old file, then the new one.
        append("ERROR five\n")
        log.rename(tmp_path / "app.log.1")
        log.write_text("ERROR six\nERROR seven\n")
        assert probe(exp)[errors] == 6
        # Truncated in place (copytruncate), then written again.
        log.write_text("")
        append("ERROR eight\n")
        assert probe(exp)[errors] == 7
        # Re-created: replaced by a new file (a new inode) with one error.
        replacement = tmp_path / "app.log.new"
        replacement.write_text("WARN nine\nERROR ten\n")
        replacement.rename(log)
        values = probe(exp)
        assert (values[errors], values[warns]) == (8, 2)
        # Deleted: the file is missing (and says so), then read from its start when it is back.
        log.unlink()
        values = probe(exp)
        assert values[f'stacksense_log_file_present{{file="{log}"}}'] == 0
        log.write_text("ERROR eleven\n")
        assert probe(exp)[errors] == 9
        # More than max_bytes_per_probe: read over several probes, every line counted once.
        append("ERROR %s\n" % ("x" * 90) * 30)  # 30 lines of 97 bytes: 2910 bytes
        counts = [probe(exp)[errors] for _ in range(4)]
        assert counts == [19, 30, 39, 39]  # 1024 bytes a probe: 10, then 21, then all 30 lines
        values = probe(exp)
        assert values[f'stacksense_log_truncated_reads_total{{file="{log}"}}'] == 2
        # The last matching line, truncated and scrubbed, through the API.
        view = requests.get(f"{exp.url}/api/v1/servers/h", timeout=10).json()
        assert view["log_matches"][str(log)]["warn"] == "WARN nine"
        assert view["log_matches"][str(log)]["error"].startswith("ERROR xxx")
        assert len(view["log_matches"][str(log)]["error"]) <= 200


def test_scrubbed_last_match_masks_credentials(
    tmp_path: Path,
    ssh_keys: SshdKeys,
    ssh_server: Sshd,
) -> None:
    log = tmp_path / "auth.log"
    log.write_text("")
    module = {"logs": [{"file": str(log), "patterns": {"fail": "failed"}}]}
    with exporter_for(tmp_path, ssh_keys, ssh_server, module) as exp:
        probe(exp)
        log.write_text("login failed for bob password=hunter2\n")
        probe(exp)
        line = requests.get(f"{exp.url}/api/v1/servers/h", timeout=10).json()["log_matches"][
            str(log)
        ]["fail"]
        assert "hunter2" not in line and "password=<redacted>" in line


def test_host_facts_are_read_once_per_connection(
    tmp_path: Path,
    ssh_keys: SshdKeys,
    ssh_server: Sshd,
) -> None:
    known = tmp_path / "known_hosts"
    known.write_text(ssh_server.known_hosts_line())
    inv = write_inventory(
        tmp_path / "servers.yml",
        [server_entry("h", ssh_server)],
        {"default": {"key_file": str(ssh_keys.client_key)}},
        known,
        modules={"default": {}},
    )
    recorder = RecordingRunner()
    with running_exporter(inv, runner=recorder) as exp:
        first, second = probe(exp), probe(exp)
        scripts = recorder.scripts_for("h")
        marker = f"@@stacksense@@ {FACTS_SECTION}'"
        assert marker in scripts[0] and marker not in scripts[1]
        threads = os.cpu_count()
        for values in (first, second):
            info = next(k for k in values if k.startswith("stacksense_server_info"))
            assert f'cpu_threads="{threads}"' in info and 'memory_bytes="' in info
            assert sum(1 for k in values if k.startswith("node_cpu_info{")) == threads
        # A new connection reads them again.
        exp.app.pool.close()
        probe(exp)
        assert marker in recorder.scripts_for("h")[2]


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"commands": [{"name": "x", "run": "rm -rf /"}]}, "commands[0].run: expected a non-empty"),
        (
            {"commands": [{"name": "x", "run": ["true"], "timeout_seconds": 20}]},
            "timeouts add up to 20s",
        ),
        ({"services": [{"name": "x", "unit": "a b"}]}, "services[0].unit: not a systemd unit name"),
        ({"services": [{"name": "x"}]}, "give unit, process or cmdline"),
        ({"logs": [{"file": "relative.log", "patterns": {"e": "E"}}]}, "expected an absolute path"),
        ({"logs": [{"file": "/x", "patterns": {"e": "("}}]}, "invalid regular expression"),
        (
            {"services": [{"name": "x", "unti": "a"}]},
            "services[0].unti: unknown key (allowed: cmdline, name, process, unit)",
        ),
        (
            {"commands": [{"name": "x", "run": ["true"], "timeout": 1}]},
            "commands[0].timeout: unknown key (allowed: name, ok_exit_codes, run, timeout_seconds, "
            "value)",
        ),
        (
            {"commands": [{"name": "x", "run": ["true"], "value": {"rgx": "(1)"}}]},
            "commands[0].value.rgx: unknown key (allowed: regex)",
        ),
        (
            {"commands": [{"name": "x", "run": ["true"], "value": {"regex": "1"}}]},
            "commands[0].value.regex: needs a group",
        ),
        (
            {"logs": [{"file": "/x", "pattern": {"e": "E"}}]},
            "logs[0].pattern: unknown key (allowed: file, max_bytes_per_probe, patterns)",
        ),
        (
            {"logs": [{"file": "/x", "patterns": {"e": "E"}, "max_bytes_per_probe": 10}]},
            "logs[0].max_bytes_per_probe: expected an integer in [1024,",
        ),
        ({"services": [{"unit": "a"}]}, "services[0].name: required"),
    ],
)
def test_invalid_checks_are_refused_with_the_key_path(
    tmp_path: Path,
    bad: dict[str, Any],
    message: str,
) -> None:
    from exporter.config import ConfigError, parse_inventory

    data = {
        "credentials": {"default": {"agent": True}},
        "modules": {"m": bad},
        "servers": [{"name": "h", "host": "x", "module": "m"}],
    }
    with pytest.raises(ConfigError) as info:
        parse_inventory(data, base=tmp_path)
    assert message in str(info.value) and "modules.m." in str(info.value)


@pytest.mark.parametrize("shell", ["/bin/sh", "/bin/bash", "/bin/busybox"])
def test_command_snippet_works_in_every_common_host_shell(shell: str) -> None:
    """RHEL's /bin/sh is bash, Debian's dash, Alpine's busybox ash: the same snippet."""
    from exporter.checks import commands
    from exporter.checks_config import parse_commands

    if not os.path.exists(shell):
        pytest.skip(f"{shell} not installed")
    argv = [shell, "sh"] if shell.endswith("busybox") else [shell]
    [check] = parse_commands(
        [{"name": "n", "run": ["sh", "-c", "echo 'v=12'; exit 0"], "value": {"regex": r"v=(\d+)"}}],
        "c",
    )
    out = subprocess.run(
        [*argv, "-c", commands.snippet(check)], capture_output=True, text=True, timeout=10
    ).stdout
    value, rc, duration, reason = commands.evaluate(check, out)
    assert (value, rc, reason) == (12.0, 0, None) and duration is not None
