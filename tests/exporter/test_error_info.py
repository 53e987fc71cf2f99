"""`stacksense_probe_last_error_info{reason,message}`: why a probe failed, for the pages.

The rule engine copies these labels into ServerOffline and the pending warning,
so each cause must have its own reason and a short, stable, secret-free message.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from exporter.errors import DETAILS, REASONS, short_message
from tests.exporter.harness import (
    error_info,
    running_exporter,
    samples,
    server_entry,
    write_inventory,
)
from tests.peers.sshd import Sshd, keygen
from tests.peers.util import free_port

FAIL = 'stacksense_probe_failure{{reason="{}"}}'


def probe_one(
    tmp_path: Path, entry: dict[str, object], key: Path, known_hosts: str
) -> tuple[dict[str, float], dict[str, str], str]:
    known = tmp_path / "known_hosts"
    known.write_text(known_hosts)
    inv = write_inventory(
        tmp_path / "servers.yml", [entry], {"default": {"key_file": str(key)}}, known
    )
    with running_exporter(inv) as exp:
        resp = exp.probe(str(entry["name"]), timeout=5.0)
    assert resp.status_code == 200
    return samples(resp.text), error_info(resp.text), resp.text


def other_host_key_line(tmp_path: Path, server: Sshd) -> str:
    other = keygen(tmp_path / "other_host_key")
    key_type, b64 = Path(f"{other}.pub").read_text().split()[:2]
    return f"[{server.host}]:{server.port} {key_type} {b64}\n"


CASES = ["refused", "dns", "host_key_unknown", "host_key_changed", "auth"]


@pytest.mark.parametrize("case", CASES)
def test_each_cause_has_its_reason_and_message(tmp_path: Path, ssh_server: Sshd, case: str) -> None:
    key = ssh_server.keys.client_key
    entry = server_entry("h1", ssh_server)
    known = ssh_server.known_hosts_line()
    if case == "refused":
        entry["port"] = free_port()
    elif case == "dns":
        entry["host"] = "no-such-host.invalid"
    elif case == "host_key_unknown":
        known = ""
    elif case == "host_key_changed":
        known = other_host_key_line(tmp_path, ssh_server)
    elif case == "auth":
        key = keygen(tmp_path / "stranger_key")
    values, info, text = probe_one(tmp_path, entry, key, known)
    assert values["stacksense_probe_success"] == 0
    assert info["detail"] == case
    assert info["reason"] == DETAILS[case]  # the stable reason, as in stacksense_probe_failure
    assert values[FAIL.format(DETAILS[case])] == 1
    message = info["message"]
    assert message.startswith("h1") and "\n" not in message and len(message) <= 200
    expected = {
        "refused": "connection refused",
        "dns": "cannot resolve host",
        "host_key_unknown": "is not in",
        "host_key_changed": "changed (expected SHA256:",
        "auth": "authentication failed",
    }[case]
    assert expected in message, message
    if case == "host_key_changed":
        assert ", got SHA256:" in message


def test_no_error_info_on_success(tmp_path: Path, ssh_server: Sshd) -> None:
    known = tmp_path / "known_hosts"
    known.write_text(ssh_server.known_hosts_line())
    inv = write_inventory(
        tmp_path / "servers.yml",
        [server_entry("h1", ssh_server)],
        {"default": {"key_file": str(ssh_server.keys.client_key)}},
        known,
    )
    with running_exporter(inv) as exp:
        text = exp.probe("h1").text
    assert "stacksense_probe_last_error_info" not in text
    assert samples(text)["stacksense_probe_success"] == 1


def test_the_coarse_reasons_stay_stable() -> None:
    # Dashboards and rules sum stacksense_probe_failure over these: never rename one.
    assert REASONS == ("timeout", "refused", "unreachable", "auth", "host_key", "command", "parse")
    assert all(DETAILS[d] in REASONS for d in DETAILS)


def test_short_message_is_one_masked_line() -> None:
    text = "h1: banner said\r\npassword=hunter2 and Bearer abc.def " + "x" * 300
    out = short_message(text)
    assert "\n" not in out and "\r" not in out and len(out) <= 200
    assert "hunter2" not in out and "abc.def" not in out
    assert out.startswith("h1: banner said password=<redacted> and Bearer <redacted>")
