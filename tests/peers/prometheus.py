"""A real Prometheus server on loopback, optionally with backfilled history."""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import yaml

from tests.peers.util import free_port, stop, wait_for

PROMETHEUS = "/usr/bin/prometheus"
PROMTOOL = "/usr/bin/promtool"


@dataclass
class Prometheus:
    url: str
    port: int
    data_dir: Path
    config_path: Path
    proc: subprocess.Popen[bytes]

    def query(self, expr: str, time: float | None = None) -> list[dict[str, Any]]:
        """Instant query; returns the result vector (raises on an error envelope)."""
        params: dict[str, Any] = {"query": expr}
        if time is not None:
            params["time"] = time
        resp = requests.get(f"{self.url}/api/v1/query", params=params, timeout=10)
        body = resp.json()
        if body.get("status") != "success":
            raise RuntimeError(f"query {expr!r} failed: {body}")
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def wait_for_series(self, expr: str, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Poll until `expr` returns a non-empty vector."""
        return wait_for(lambda: self.query(expr), timeout=timeout, interval=0.5, what=expr)

    def reload(self) -> None:
        requests.post(f"{self.url}/-/reload", timeout=10).raise_for_status()

    def write_config(self, config: dict[str, Any]) -> None:
        self.config_path.write_text(yaml.safe_dump(config))


def backfill(openmetrics_text: str, data_dir: Path) -> None:
    """Create TSDB blocks from OpenMetrics text (timestamps in seconds, ends with # EOF)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", suffix=".om", delete=False) as fh:
        fh.write(openmetrics_text)
        if not openmetrics_text.rstrip().endswith("# EOF"):
            fh.write("# EOF\n")
        path = fh.name
    subprocess.run(
        [PROMTOOL, "tsdb", "create-blocks-from", "openmetrics", path, str(data_dir)],
        check=True,
        capture_output=True,
    )
    Path(path).unlink()


@contextmanager
def prometheus(
    tmp: Path,
    config: dict[str, Any] | None = None,
    *,
    data_dir: Path | None = None,
    port: int | None = None,
    extra_args: list[str] | None = None,
) -> Iterator[Prometheus]:
    """Start Prometheus with `config` (dict) and wait until it is ready."""
    port = port or free_port()
    data_dir = data_dir or tmp / "prom-data"
    data_dir.mkdir(parents=True, exist_ok=True)
    config_path = tmp / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(config or {"global": {"scrape_interval": "1s"}}))
    log = open(tmp / "prometheus.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={config_path}",
            f"--storage.tsdb.path={data_dir}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--storage.tsdb.retention.time=10y",
            "--web.enable-lifecycle",
            "--web.enable-admin-api",
            *(extra_args or []),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(
            lambda: (
                proc.poll() is None and requests.get(f"{url}/-/ready", timeout=1).status_code == 200
            ),
            timeout=30,
            what="prometheus ready",
        )
        yield Prometheus(url, port, data_dir, config_path, proc)
    finally:
        stop(proc)
        log.close()
