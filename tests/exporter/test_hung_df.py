"""A host whose `df` hangs (a dead NFS mount): the probe still answers, other collectors intact."""

from __future__ import annotations

import time
from pathlib import Path

from tests.exporter.harness import running_exporter, server_entry, write_inventory
from tests.peers.sshd import SshdKeys, sshd


def test_hung_df_is_cut_off_and_reported(tmp_path: Path, ssh_keys: SshdKeys) -> None:
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "df").write_text("#!/bin/sh\nexec sleep 60\n")
    (fake_bin / "df").chmod(0o755)
    # sshd puts our fake df first on the session's PATH, as a hung mount would make df block.
    extra = [f"SetEnv PATH={fake_bin}:/usr/local/bin:/usr/bin:/bin"]
    with sshd(tmp_path / "sshd", ssh_keys, extra=extra) as server:
        known = tmp_path / "known_hosts"
        known.write_text(server.known_hosts_line())
        inv = write_inventory(tmp_path / "servers.yml", [server_entry("nfs", server)],
                              {"default": {"key_file": str(ssh_keys.client_key)}}, known)
        with running_exporter(inv) as exp:
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
    assert values["node_load1"] >= 0
