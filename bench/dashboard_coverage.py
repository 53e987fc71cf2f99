"""How many panels of "Node Exporter Full" show data: StackSense's collectors vs node_exporter.

Run: `python -m bench.dashboard_coverage [--duration 120] [--scrape-interval 2]`

Both exporters run on this machine and are scraped by one real Prometheus under
job="node": StackSense's collectors through a loopback HTTP server that runs
the round-trip command locally with /bin/sh on every scrape (exactly what a
probe runs over SSH, minus SSH), node_exporter as installed by apt. After
`--duration` seconds of scrapes, every visible target of every panel is
evaluated with the dashboard variables substituted; a panel shows data when at
least one of its targets returns a sample. Prints both counts, the first two
rows' coverage, and the panels node_exporter fills that we do not.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests

from exporter.collectors import ParseError, ProbeContext, registry
from exporter.command import build_script, split_sections
from exporter.exposition import CONTENT_TYPE, Family, render
from tests.peers.util import serving

REPO = Path(__file__).resolve().parent.parent
DASHBOARD = REPO.parent / "shared" / "compat" / "node-exporter-full.json"
NODE_EXPORTER = "/usr/bin/prometheus-node-exporter"
FIRST_ROWS = ("Quick CPU / Mem / Disk", "Basic CPU / Mem / Net / Disk")
OURS = "stacksense"
THEIRS = "node_exporter"


@dataclass
class Panel:
    """A dashboard panel: its row, title and the expressions of its visible targets."""

    row: str
    title: str
    exprs: list[str] = field(default_factory=list)


def load_panels(path: Path = DASHBOARD) -> list[Panel]:
    """Every non-row panel, with the row it sits in (open rows own the panels after them)."""
    dashboard = json.loads(path.read_text())
    panels: list[Panel] = []
    row = ""
    for item in dashboard["panels"]:
        if item.get("type") == "row":
            row = item.get("title", "")
            for child in item.get("panels", []):
                panels.append(_panel(row, child))
        else:
            panels.append(_panel(row, item))
    return panels


def _panel(row: str, item: dict[str, Any]) -> Panel:
    exprs = [
        t["expr"] for t in item.get("targets", []) if t.get("expr") and not t.get("hide", False)
    ]
    return Panel(row, item.get("title", ""), exprs)


def substitute(expr: str, *, node: str, job: str, rate_interval: str) -> str:
    """Replace the dashboard variables the way Grafana would for one host."""
    values = {"node": node, "job": job, "__rate_interval": rate_interval}
    return re.sub(r"\$\{?(\w+)\}?", lambda m: values.get(m.group(1), m.group(0)), expr)


def panels_with_data(
    query: Callable[[str], list[Any]],
    panels: list[Panel],
    *,
    node: str,
    job: str = "node",
    rate_interval: str = "1m",
) -> list[bool]:
    """For each panel, whether at least one of its targets returns data for `node`."""
    shown: list[bool] = []
    for panel in panels:
        shown.append(
            any(
                query(substitute(e, node=node, job=job, rate_interval=rate_interval))
                for e in panel.exprs
            )
        )
    return shown


class LocalCollectors:
    """Runs the round-trip command locally and renders all collectors, as a probe would."""

    def __init__(self) -> None:
        self.modules = list(registry.COLLECTORS.values())
        self.script = build_script(self.modules)
        self.ctx = ProbeContext(target="local")
        self.failures: dict[str, str] = {}
        self.scrapes = 0
        self.host_cpu = 0.0  # CPU seconds the script cost the host (sh, grep, df)
        self.parse_cpu = 0.0  # CPU seconds of split + collect + render in this process
        self.samples = 0

    def scrape(self) -> str:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        output = subprocess.run(
            ["/bin/sh", "-c", self.script], capture_output=True, text=True, timeout=20
        ).stdout
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.host_cpu += (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        started = time.thread_time()
        text = self._render(output)
        self.parse_cpu += time.thread_time() - started
        self.scrapes += 1
        self.samples = text.count("\n") - 2 * text.count("# TYPE ")
        return text

    def _render(self, output: str) -> str:
        sections = split_sections(output)
        families: list[Family] = []
        for module in self.modules:
            try:
                families.extend(module.collect(sections, self.ctx))
            except ParseError as exc:  # reported, as the probe reports collector_success=0
                self.failures[module.name] = str(exc)
        return render(families)


@contextmanager
def serve_collectors(port: int) -> Iterator[LocalCollectors]:
    """Serve LocalCollectors' output on http://127.0.0.1:PORT/metrics."""
    collectors = LocalCollectors()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            with lock:  # ctx.state is per target and not thread-safe
                body = collectors.scrape().encode()
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    with serving(ThreadingHTTPServer(("127.0.0.1", port), Handler)):
        yield collectors


@contextmanager
def stacksense_exporter(port: int, name: str) -> Iterator[subprocess.Popen[bytes]]:
    """The real StackSense exporter in local mode (no inventory: it probes this host)."""
    from tests.peers.util import stop, wait_for

    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "exporter.main",
            f"--web.listen-address=127.0.0.1:{port}",
            f"--local-name={name}",
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(
            lambda: requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2).ok,
            timeout=20,
            what="stacksense exporter",
        )
        yield proc
    finally:
        stop(proc)


@contextmanager
def node_exporter(port: int) -> Iterator[subprocess.Popen[bytes]]:
    """The real node_exporter on loopback."""
    from tests.peers.util import stop, wait_for

    proc = subprocess.Popen(
        [NODE_EXPORTER, f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(
            lambda: requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2).ok,
            timeout=15,
            what="node_exporter",
        )
        yield proc
    finally:
        stop(proc)


def scrape_config(
    targets: dict[str, str], interval: float, probes: dict[str, str] | None = None
) -> dict[str, Any]:
    """One job "node", one instance label per target, as the dashboard's $node selects it.

    `probes` maps a target name to the exporter's server name: that target is
    scraped at /probe?target=NAME, as Prometheus scrapes the StackSense exporter.
    """
    probes = probes or {}

    def labels(name: str) -> dict[str, str]:
        if name not in probes:
            return {"source": name}
        return {"source": name, "__metrics_path__": "/probe", "__param_target": probes[name]}

    return {
        "global": {
            "scrape_interval": f"{round(interval * 1000)}ms",
            "scrape_timeout": f"{round(interval * 1000)}ms",
        },
        "scrape_configs": [
            {
                "job_name": "node",
                "static_configs": [
                    {"targets": [address], "labels": labels(name)}
                    for name, address in targets.items()
                ],
                "relabel_configs": [
                    {"source_labels": ["source"], "target_label": "instance"},
                    {"regex": "source", "action": "labeldrop"},
                ],
            }
        ],
    }


def main(argv: list[str] | None = None) -> int:
    from tests.peers.prometheus import prometheus
    from tests.peers.util import free_port

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=120.0, help="seconds of scrapes")
    parser.add_argument("--scrape-interval", type=float, default=2.0)
    parser.add_argument("--rate-interval", default="1m", help="value of $__rate_interval")
    parser.add_argument("--dashboard", type=Path, default=DASHBOARD)
    parser.add_argument(
        "--via-exporter",
        action="store_true",
        help="scrape the real StackSense exporter (local mode, /probe) instead of the collectors",
    )
    args = parser.parse_args(argv)

    panels = load_panels(args.dashboard)
    ours_port, theirs_port = free_port(), free_port()
    targets = {OURS: f"127.0.0.1:{ours_port}", THEIRS: f"127.0.0.1:{theirs_port}"}
    probes = {OURS: "bench-local"} if args.via_exporter else {}
    config = scrape_config(targets, args.scrape_interval, probes)
    with (
        tempfile.TemporaryDirectory() as tmp,
        (
            stacksense_exporter(ours_port, probes[OURS])
            if args.via_exporter
            else serve_collectors(ours_port)
        ) as served,
        node_exporter(theirs_port),
        prometheus(Path(tmp), config) as prom,
    ):
        print(f"scraping both exporters every {args.scrape_interval}s for {args.duration}s ...")
        time.sleep(args.duration)  # a benchmark's fixed observation window, not a test wait
        counts = {}
        for instance in (OURS, THEIRS):
            counts[instance] = panels_with_data(
                prom.query, panels, node=instance, rate_interval=args.rate_interval
            )
    collectors = served if isinstance(served, LocalCollectors) else None
    report(panels, counts[OURS], counts[THEIRS], collectors.failures if collectors else {})
    if collectors and collectors.scrapes:
        n = collectors.scrapes
        print(
            f"\ncost per probe over {n} scrapes ({collectors.samples} samples): "
            f"host {collectors.host_cpu / n * 1000:.2f} ms CPU (sh + grep + df), "
            f"exporter {collectors.parse_cpu / n * 1000:.2f} ms CPU (split + collect + render)"
        )
    return 0


def report(
    panels: list[Panel], ours: list[bool], theirs: list[bool], failures: dict[str, str]
) -> None:
    """Print the counts, first-rows coverage and the differences."""
    total = len(panels)
    print(f"panels with data: stacksense {sum(ours)}/{total}, node_exporter {sum(theirs)}/{total}")
    first = [i for i, p in enumerate(panels) if p.row in FIRST_ROWS]
    print(
        f"first two rows: stacksense {sum(ours[i] for i in first)}/{len(first)}, "
        f"node_exporter {sum(theirs[i] for i in first)}/{len(first)}"
    )
    missing = [p for p, o, t in zip(panels, ours, theirs, strict=True) if t and not o]
    extra = [p for p, o, t in zip(panels, ours, theirs, strict=True) if o and not t]
    print(f"\nnode_exporter shows, stacksense does not ({len(missing)}):")
    for p in missing:
        print(f"  [{p.row}] {p.title}")
    print(f"\nstacksense shows, node_exporter does not ({len(extra)}):")
    for p in extra:
        print(f"  [{p.row}] {p.title}")
    neither = [p for p, o, t in zip(panels, ours, theirs, strict=True) if not o and not t]
    print(f"\nneither shows on this machine ({len(neither)}):")
    for p in neither:
        print(f"  [{p.row}] {p.title}")
    if failures:
        print("\ncollector failures:", failures)


if __name__ == "__main__":
    sys.exit(main())
