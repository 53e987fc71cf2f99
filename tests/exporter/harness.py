"""Run a real exporter (in-process HTTP server) and write inventories for tests."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from exporter.app import ExporterApp
from exporter.server import ExporterHTTPServer
from tests.peers.sshd import Sshd, SshdKeys, sshd


@dataclass
class RunningExporter:
    app: ExporterApp
    url: str
    server: ExporterHTTPServer | None = None

    def probe(self, target: str, timeout: float | None = None, **params: str) -> requests.Response:
        headers = {"X-Prometheus-Scrape-Timeout-Seconds": str(timeout)} if timeout else {}
        return requests.get(
            f"{self.url}/probe", params={"target": target, **params}, headers=headers, timeout=60
        )

    def probe_samples(self, target: str, timeout: float | None = None) -> dict[str, float]:
        resp = self.probe(target, timeout)
        resp.raise_for_status()
        return samples(resp.text)


def samples(text: str) -> dict[str, float]:
    """`{'name{a="b"}': value}` for every sample (labels sorted), for easy assertions."""
    out: dict[str, float] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
    return out


LAST_ERROR_INFO = "stacksense_probe_last_error_info"


def error_info(text: str) -> dict[str, str]:
    """The labels of stacksense_probe_last_error_info (exactly one sample expected)."""
    found = [line for line in text.splitlines() if line.startswith(LAST_ERROR_INFO + "{")]
    assert len(found) == 1, found
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == LAST_ERROR_INFO:
                assert s.value == 1
                return dict(s.labels)
    raise AssertionError("no last_error_info")


@contextmanager
def running_exporter(
    config: Path | None, *, server_options: dict[str, Any] | None = None, **kwargs: Any
) -> Iterator[RunningExporter]:
    """`server_options` go to ExporterHTTPServer (max_connections, reload_token_file)."""
    app = ExporterApp(str(config) if config else None, **kwargs)
    server = ExporterHTTPServer(("127.0.0.1", 0), app, **(server_options or {}))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield RunningExporter(app, f"http://127.0.0.1:{server.server_address[1]}", server)
    finally:
        server.shutdown()
        server.server_close()
        app.close()


def write_inventory(
    path: Path,
    servers: list[dict[str, Any]],
    credentials: dict[str, Any],
    known_hosts: Path,
    **extra: Any,
) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "known_hosts": str(known_hosts),
                "credentials": credentials,
                "servers": servers,
                **extra,
            }
        )
    )
    return path


def server_entry(name: str, sshd: Sshd, **overrides: Any) -> dict[str, Any]:
    return {"name": name, "host": sshd.host, "port": sshd.port, "user": "root", **overrides}


@contextmanager
def exporter_over_fake_df(
    tmp_path: Path, ssh_keys: SshdKeys, name: str, df_script: str, **app_options: Any
) -> Iterator[RunningExporter]:
    """An exporter probing one sshd host `name` whose `df` is the shell script `df_script`.

    sshd puts the fake df first on the session's PATH, as a hung mount would make the
    real one block.
    """
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "df").write_text(df_script)
    (fake_bin / "df").chmod(0o755)
    extra = [f"SetEnv PATH={fake_bin}:/usr/local/bin:/usr/bin:/bin"]
    with sshd(tmp_path / "sshd", ssh_keys, extra=extra) as server:
        known = tmp_path / "known_hosts"
        known.write_text(server.known_hosts_line())
        inv = write_inventory(
            tmp_path / "servers.yml",
            [server_entry(name, server)],
            {"default": {"key_file": str(ssh_keys.client_key)}},
            known,
        )
        with running_exporter(inv, **app_options) as exp:
            yield exp


@contextmanager
def exporter_for(
    tmp_path: Path, ssh_keys: SshdKeys, server: Sshd, module: dict[str, Any], **server_extra: Any
) -> Iterator[RunningExporter]:
    """A running exporter probing `server` as "h" with `module` as its default module."""
    known = tmp_path / "known_hosts"
    known.write_text(server.known_hosts_line())
    inv = write_inventory(
        tmp_path / "servers.yml",
        [server_entry("h", server, **server_extra)],
        {"default": {"key_file": str(ssh_keys.client_key)}},
        known,
        modules={"default": module},
    )
    with running_exporter(inv) as exp:
        yield exp
