"""The shared HTTP metrics, the route table whose templates label them, and the CLI flags."""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from stacksense_common import cli_flags
from stacksense_common.http_metrics import UNMATCHED, HttpMetrics
from stacksense_common.routes import ANY_METHOD, RouteTable
from tests.peers.util import free_port, wait_for

REPO = Path(__file__).resolve().parents[2]


def samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }


def test_requests_are_counted_by_handler_and_code_and_timed_by_handler() -> None:
    registry = CollectorRegistry()
    metrics = HttpMetrics(registry)
    metrics.observe("/probe", 200, 0.002)
    metrics.observe("/probe", 200, 0.004)
    metrics.observe("/probe", 400, 0.001)
    metrics.observe(UNMATCHED, "404", 0.0001)
    got = samples(registry)
    assert got[("stacksense_http_requests_total", (("code", "200"), ("handler", "/probe")))] == 2
    assert got[("stacksense_http_requests_total", (("code", "400"), ("handler", "/probe")))] == 1
    assert got[("stacksense_http_requests_total", (("code", "404"), ("handler", "unmatched")))] == 1
    assert got[("stacksense_http_request_duration_seconds_count", (("handler", "/probe"),))] == 3
    assert got[
        ("stacksense_http_request_duration_seconds_sum", (("handler", "/probe"),))
    ] == pytest.approx(0.007)


def test_the_route_table_matches_templates_not_raw_paths() -> None:
    table: RouteTable[str] = RouteTable()
    table.add("/probe", "probe")
    table.add("/-/reload", "reload", ANY_METHOD)
    table.add("/api/v1/servers/<name>", "one")
    table.add("/api/v1/servers/<name>/<action>", "act", ("POST",))
    hit = table.match("/api/v1/servers/web%2F1")
    assert hit is not None and hit.route.template == "/api/v1/servers/<name>"
    assert hit.params == {"name": "web%2F1"}
    act = table.match("/api/v1/servers/web1/suspend")
    assert act is not None and act.params == {"name": "web1", "action": "suspend"}
    assert act.route.allows("POST") and not act.route.allows("GET")
    reload = table.match("/-/reload")
    assert reload is not None and reload.route.allows("DELETE")
    probe = table.match("/probe")
    assert probe is not None and probe.route.allows("HEAD") and not probe.route.allows("POST")
    for path in (
        "/api/v1/servers/",
        "/api/v1/servers",
        "/probe/",
        "/nope",
        "",
        "/api/v1/servers/a/b/c",
    ):
        assert table.match(path) is None, path


@pytest.mark.parametrize(
    "argv",
    [
        ["--config.file", "a.yml", "--web.listen-address", "h:1", "--log.level", "debug"],
        ["--config.file=a.yml", "--web.listen-address=h:1", "--log.level=debug"],
        ["--config", "a.yml", "--listen", "h:1", "--log-level", "debug"],
    ],
)
def test_common_flags_and_their_aliases_land_in_the_same_attributes(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    cli_flags.add_config_file(parser, help="config", aliases=("--config",))
    cli_flags.add_listen_address(parser, default="0.0.0.0:1", aliases=("--listen",))
    cli_flags.add_log_level(parser, aliases=("--log-level",))
    args = parser.parse_args(argv)
    assert (args.config, args.listen, args.log_level) == ("a.yml", "h:1", "debug")


def test_a_subcommand_inherits_flags_given_before_it() -> None:
    parser = argparse.ArgumentParser()
    cli_flags.add_log_level(parser)
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run")
    cli_flags.add_log_level(run, inherit=True)
    assert parser.parse_args(["--log.level", "debug", "run"]).log_level == "debug"
    assert parser.parse_args(["run", "--log.level", "error"]).log_level == "error"
    assert parser.parse_args(["run"]).log_level == "info"


@pytest.mark.parametrize(
    "command",
    [
        ["-m", "exporter.main"],
        ["-m", "rules.cli", "run"],
        ["-m", "alert_router.cli", "serve"],
    ],
)
def test_every_service_takes_the_common_flags(command: list[str]) -> None:
    out = subprocess.run(
        [sys.executable, *command, "--help"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    for flag in (cli_flags.CONFIG, cli_flags.LISTEN, cli_flags.LOG_LEVEL):
        assert flag in out.stdout, (command, flag)


def _raw(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        return sock.recv(65536)


def test_requests_refused_before_routing_count_as_unmatched(tmp_path: Path) -> None:
    """A malformed request never reaches a route, and its raw line never becomes a label."""
    from exporter.app import ExporterApp
    from exporter.server import ExporterHTTPServer
    from rules.server import RulesService

    app = ExporterApp(None)
    exporter = ExporterHTTPServer(("127.0.0.1", 0), app)
    threading.Thread(target=exporter.serve_forever, daemon=True).start()
    cfg = tmp_path / "rules.yml"
    cfg.write_text(
        f'prometheus: {{url: "http://127.0.0.1:{free_port()}", retries: 0}}\n'
        "interval: 60s\nstate_file: state.json\n"
    )
    rules = RulesService(cfg)
    _, rules_port = rules.start(f"127.0.0.1:{free_port()}")
    try:
        for port, registry in (
            (exporter.server_address[1], app.registry),
            (rules_port, rules.registry),
        ):
            assert b" 400 " in _raw(port, b"GET /probe?x HTTP/1.1 junk\r\n\r\n")
            key = ("stacksense_http_requests_total", (("code", "400"), ("handler", "unmatched")))
            # Counted just after the answer is written: wait for the server thread.
            wait_for(
                lambda: samples(registry).get(key) == 1,  # noqa: B023
                timeout=5,
                what=f"the 400 counted on port {port}",
            )
            assert not any("junk" in str(k) or "/probe" in str(k) for k in samples(registry))
    finally:
        exporter.shutdown()
        exporter.server_close()
        app.close()
        rules.stop()
