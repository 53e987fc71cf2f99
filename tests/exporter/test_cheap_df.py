"""df without `timeout` on hosts with only local mounts, and the guard back after a hang."""

from __future__ import annotations

import time
from pathlib import Path

from tests.exporter.harness import exporter_over_fake_df
from tests.exporter.recording_runner import RecordingRunner
from tests.peers.sshd import SshdKeys

FAIL = 'stacksense_probe_failure{reason="timeout"}'
GUARDED_DF = "timeout -k 1 4 df"


def test_a_hang_with_the_cheap_df_brings_the_guard_back(tmp_path: Path, ssh_keys: SshdKeys) -> None:
    hang = tmp_path / "hang"
    # A df that works until `hang` exists, as a mount that appears and then stalls.
    script = f'#!/bin/sh\n[ -e {hang} ] && exec sleep 60\nexec /usr/bin/df "$@"\n'
    recorder = RecordingRunner()
    with exporter_over_fake_df(tmp_path, ssh_keys, "h", script, runner=recorder) as exp:
        # This machine's mounts are all local: after one probe, df runs unguarded.
        assert exp.probe_samples("h")["stacksense_probe_success"] == 1
        assert exp.probe_samples("h")["stacksense_probe_success"] == 1
        first, second = recorder.scripts_for("h")
        assert GUARDED_DF in first and GUARDED_DF not in second and "df -B1" in second
        hang.touch()
        # Unguarded, the stalled df costs this probe...
        assert exp.probe_samples("h", timeout=1.5)[FAIL] == 1
        # ...and never another: the guarded df is back, the other collectors answer.
        started = time.monotonic()
        values = exp.probe_samples("h", timeout=9)
        assert time.monotonic() - started < 8.5
        assert GUARDED_DF in recorder.scripts_for("h")[3]
    assert values["stacksense_probe_success"] == 1
    errors = {k: v for k, v in values.items() if k.startswith("node_filesystem_device_error")}
    assert errors and all(v == 1 for v in errors.values()), errors
    assert "node_load1" in values  # the other collectors answered
