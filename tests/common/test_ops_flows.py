"""Each service as a real process, started with the common flags: /-/healthy, /-/ready,
/-/reload (refused without the token, 500 and gauge 0 on a bad config, 200 and gauge 1 on
a good one) and the shared request counter labelled by route template and code."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.peers.util import free_port, stop_group, wait_for

REPO = Path(__file__).resolve().parents[2]
TOKEN = "reload-s3cret"


@dataclass
class Service:
    name: str  # as in the metric names
    display: str  # as in the ops answers
    url: str
    config: Path
    good: str  # config text that loads
    bad: str  # config text that does not, and the problem it names
    problem: str


def metrics(url: str) -> dict[str, float]:
    text = requests.get(f"{url}/metrics", timeout=10).text
    return {
        s.name + "{" + ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items())) + "}": s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }


@contextmanager
def process(
    argv: list[str], url: str, log: Path, env: dict[str, str] | None = None
) -> Iterator[None]:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, *argv],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=log.parent,
            start_new_session=True,
            env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
        )
    try:
        wait_for(
            lambda: (
                proc.poll() is not None
                or requests.get(f"{url}/-/healthy", timeout=1).status_code == 200
            ),
            timeout=30,
            what=f"{argv[1]} serving (log: {log})",
        )
        assert proc.poll() is None, log.read_text()
        yield
    finally:
        stop_group(proc)


@contextmanager
def exporter(tmp: Path) -> Iterator[Service]:
    (tmp / "push.token").write_text("push\n")
    (tmp / "reload.token").write_text(TOKEN + "\n")
    (tmp / "known_hosts").touch()
    inventory = {
        "known_hosts": str(tmp / "known_hosts"),
        "credentials": {"default": {"password_env": "FLOW_PASSWORD"}},
        "servers": [{"name": "laptop", "mode": "push", "push_token_file": str(tmp / "push.token")}],
    }
    good = yaml.safe_dump(inventory)
    config = tmp / "servers.yml"
    config.write_text(good)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with process(
        [
            "-m",
            "exporter.main",
            f"--config.file={config}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warning",
            f"--web.reload-token-file={tmp / 'reload.token'}",
        ],
        url,
        tmp / "exporter.log",
        {"FLOW_PASSWORD": "x"},
    ):
        yield Service(
            "exporter",
            "exporter",
            url,
            config,
            good,
            good.replace("mode: push", "mode: sideways"),
            "servers[0].mode",
        )


@contextmanager
def rule_engine(tmp: Path) -> Iterator[Service]:
    (tmp / "reload.token").write_text(TOKEN + "\n")
    good = (
        f'prometheus: {{url: "http://127.0.0.1:{free_port()}", retries: 0, timeout: 1s}}\n'
        "interval: 60s\nstate_file: state.json\n"
        f"web: {{reload_token_file: {tmp / 'reload.token'}}}\n"
    )
    config = tmp / "rules.yml"
    config.write_text(good)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with process(
        [
            "-m",
            "rules.cli",
            "run",
            f"--config.file={config}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warning",
        ],
        url,
        tmp / "rules.log",
    ):
        yield Service(
            "rules",
            "rule engine",
            url,
            config,
            good,
            good + "bogus_key: 1\n",
            "bogus_key: unknown key",
        )


@contextmanager
def router(tmp: Path) -> Iterator[Service]:
    (tmp / "tokens").write_text(TOKEN + "\n")
    cfg = {
        "route": {"receiver": "nobody"},
        "receivers": [{"name": "nobody"}],
        "auth": {"tokens_file": str(tmp / "tokens")},
        "storage": {"path": str(tmp / "router.db")},
    }
    good = yaml.safe_dump(cfg)
    config = tmp / "router.yml"
    config.write_text(good)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # Two gunicorn workers: the counts and gauges read are the sum / latest over both.
    with process(
        [
            "-m",
            "alert_router.cli",
            "serve",
            f"--config.file={config}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warning",
            "--workers=2",
            "--threads=2",
        ],
        url,
        tmp / "router.log",
        {"STACKSENSE_ROUTER_METRICS_DIR": str(tmp / "metrics")},
    ):
        yield Service(
            "router",
            "alert router",
            url,
            config,
            good,
            good.replace("receiver: nobody", "recever: nobody"),
            "route.recever",
        )


SERVICES = {"exporter": exporter, "rules": rule_engine, "router": router}


@pytest.mark.parametrize("kind", sorted(SERVICES))
def test_ops_endpoints_mean_the_same_in_every_service(tmp_path: Path, kind: str) -> None:
    with SERVICES[kind](tmp_path) as svc:
        healthy = requests.get(f"{svc.url}/-/healthy", timeout=10)
        assert (healthy.status_code, healthy.text) == (
            200,
            f"StackSense {svc.display} is Healthy.\n",
        )
        wait_for(
            lambda: requests.get(f"{svc.url}/-/ready", timeout=5).status_code == 200,
            timeout=30,
            what=f"{kind} ready",
        )
        assert (
            requests.get(f"{svc.url}/-/ready", timeout=10).text
            == f"StackSense {svc.display} is Ready.\n"
        )

        reload = f"{svc.url}/-/reload"
        auth = {"Authorization": f"Bearer {TOKEN}"}
        # Loopback is not enough once a write token is configured.
        refused = requests.post(reload, timeout=10)
        assert refused.status_code == 401 and "Bearer" in refused.text
        assert refused.headers["WWW-Authenticate"] == "Bearer"
        assert (
            requests.post(reload, headers={"Authorization": "Bearer nope"}, timeout=10).status_code
            == 401
        )
        assert requests.get(reload, timeout=10).status_code == 405

        gauge = f"stacksense_{svc.name}_config_last_reload_successful{{}}"
        stamp = f"stacksense_{svc.name}_config_last_reload_success_timestamp_seconds{{}}"
        assert metrics(svc.url)[gauge] == 1
        started_at = metrics(svc.url)[stamp]
        assert started_at > 0

        svc.config.write_text(svc.bad)
        failed = requests.post(reload, headers=auth, timeout=10)
        assert failed.status_code == 500
        assert "failed to reload config: " in failed.text and svc.problem in failed.text
        assert TOKEN not in failed.text
        assert metrics(svc.url)[gauge] == 0
        assert metrics(svc.url)[stamp] == started_at

        svc.config.write_text(svc.good)
        assert requests.put(reload, headers=auth, timeout=10).status_code == 200
        after = metrics(svc.url)
        assert after[gauge] == 1 and after[stamp] >= started_at

        head = requests.head(f"{svc.url}/-/healthy", timeout=10)
        assert head.status_code == 200 and head.content == b""
        wrong = requests.delete(f"{svc.url}/metrics", timeout=10)  # a route, not this method
        assert wrong.status_code == 405
        if kind != "router":  # the router's JSON error handler drops Flask's Allow header
            assert "GET" in wrong.headers["Allow"]

        requests.get(f"{svc.url}/no/such/path", timeout=10)
        # A request is counted just after its answer is written: wait for the last one.
        unmatched = 'stacksense_http_requests_total{code="404",handler="unmatched"}'
        wait_for(
            lambda: metrics(svc.url).get(unmatched) == 1,
            timeout=10,
            what="the last request counted",
        )
        counts = metrics(svc.url)

    def count(handler: str, code: int) -> float:
        return counts.get(f'stacksense_http_requests_total{{code="{code}",handler="{handler}"}}', 0)

    assert count("/-/healthy", 200) >= 1
    assert count("/-/ready", 200) >= 1
    assert count("/-/reload", 401) == 2
    assert count("/-/reload", 500) == 1
    assert count("/-/reload", 200) == 1
    assert count("/-/reload", 405) == 1
    assert count("unmatched", 404) == 1  # the raw path never becomes a label
    assert not any("/no/such/path" in key for key in counts)
    assert counts['stacksense_http_request_duration_seconds_count{handler="/-/reload"}'] == 5
