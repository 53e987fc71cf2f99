"""A host whose `df` hangs (a dead NFS mount): the probe still answers, other collectors intact."""

from __future__ import annotations

import time
from pathlib import Path

from tests.exporter.harness import exporter_over_fake_df
from tests.peers.sshd import SshdKeys


def test_hung_df_is_cut_off_and_reported(tmp_path: Path, ssh_keys: SshdKeys) -> None:
    with exporter_over_fake_df(tmp_path, ssh_keys, "nfs", "#!/bin/sh\nexec sleep 60\n") as exp:
        started = time.monotonic()
        values = exp.probe_samples("nfs", timeout=9)
        elapsed = time.monotonic() - started
    assert elapsed < 8.5
    assert values["stacksense_probe_success"] == 1
    # As node_exporter does for a stuck mount: device_error=1, no sizes.
    errors = {k: v for k, v in values.items() if k.startswith("node_filesystem_device_error")}
    assert errors and all(v == 1 for v in errors.values()), errors
    assert not any(k.startswith("node_filesystem_size_bytes") for k in values)
    assert values['stacksense_collector_success{collector="cpu"}'] == 1
