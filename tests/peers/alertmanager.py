"""A real Alertmanager on loopback (no clustering)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import yaml

from tests.peers.util import free_port, stop, wait_for

ALERTMANAGER = "/usr/bin/prometheus-alertmanager"
AMTOOL = "/usr/bin/amtool"


@dataclass
class Alertmanager:
    url: str
    port: int
    proc: subprocess.Popen[bytes]

    def alerts(self) -> list[dict[str, Any]]:
        resp = requests.get(f"{self.url}/api/v2/alerts", timeout=10)
        resp.raise_for_status()
        result: list[dict[str, Any]] = resp.json()
        return result


@contextmanager
def alertmanager(
    tmp: Path, config: dict[str, Any], *, port: int | None = None
) -> Iterator[Alertmanager]:
    """Start Alertmanager with `config` (dict) and wait until it is ready."""
    port = port or free_port()
    cfg = tmp / "alertmanager.yml"
    cfg.write_text(yaml.safe_dump(config))
    storage = tmp / "am-data"
    storage.mkdir(exist_ok=True)
    url = f"http://127.0.0.1:{port}"
    log = open(tmp / "alertmanager.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [
            ALERTMANAGER,
            f"--config.file={cfg}",
            f"--storage.path={storage}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
            f"--web.external-url={url}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(
            lambda: (
                proc.poll() is None and requests.get(f"{url}/-/ready", timeout=1).status_code == 200
            ),
            timeout=30,
            what="alertmanager ready",
        )
        yield Alertmanager(url, port, proc)
    finally:
        stop(proc)
        log.close()
