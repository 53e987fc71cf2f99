"""Benchmark one rule-engine cycle: vectorised fleet queries vs one query set per server.

Run from the repository root::

    python3 -m bench.rules_bench                 # 1,000 and 10,000 servers
    python3 -m bench.rules_bench --servers 1000  # one size only
    python3 -m bench.rules_bench --sample 500    # per-server run sampled above this size

For each fleet size it backfills (promtool) 20 minutes of 15 s samples per
simulated server (heartbeat, suspension, CPU, memory, swap, filesystem ratios,
network counters, plus the exporter's `up`), starts a real Prometheus on that
data, and evaluates the same instant with:

* the engine (`Engine.run_cycle`), the code that runs in production;
* a per-server implementation asking the same questions server by server
  (10 queries per server). Above `--sample` servers it is timed on a random
  sample and extrapolated linearly; the output says so.

Printed per approach: wall time, Prometheus queries, CPU time of this process
(`time.process_time`, the engine side) and Prometheus' own CPU (psutil).
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from rules.conditions import default_conditions  # noqa: E402
from rules.config import EngineConfig  # noqa: E402
from rules.engine import Engine  # noqa: E402
from rules.promapi import PrometheusClient, escape_label_value  # noqa: E402
from rules.status import StatusInputs, decide_status  # noqa: E402
from tests.peers.prometheus import PROMTOOL, prometheus  # noqa: E402

STEP = 15
WATCHED = 8 * STEP  # longer than the default offline threshold (60 s)
HISTORY = 20 * 60


def _series_lines(name: str, labels: str, start: int, values: list[float]) -> Iterator[str]:
    for i, v in enumerate(values):
        yield f"{name}{{{labels}}} {v:.12g} {start + i * STEP}\n"  # heartbeats are unix times


def write_history(path: Path, servers: int, end: int) -> None:
    """Stream an OpenMetrics file for `servers` simulated servers ending at `end`."""
    rng = random.Random(42)
    start = end - HISTORY
    n = HISTORY // STEP + 1
    exp = 'job="stacksense-exporter",instance="exp:9816"'
    names = [f"srv{i:05d}" for i in range(servers)]
    with path.open("w") as fh:
        fh.write("# TYPE up gauge\n")
        fh.writelines(_series_lines("up", exp, start, [1.0] * n))
        fh.write("# TYPE stacksense_last_heartbeat_timestamp_seconds gauge\n")
        for i, s in enumerate(names):
            dead = i % 50 == 0  # 2 % of the fleet stopped answering 5 minutes ago
            beats = [
                float(min(start + k * STEP - 3, end - 300) if dead else start + k * STEP - 3)
                for k in range(n)
            ]
            fh.writelines(
                _series_lines(
                    "stacksense_last_heartbeat_timestamp_seconds",
                    f'{exp},server="{s}",source="ssh"',
                    start,
                    beats,
                )
            )
        fh.write("# TYPE stacksense_server_suspended gauge\n")
        for i, s in enumerate(names):
            fh.writelines(
                _series_lines(
                    "stacksense_server_suspended",
                    f'{exp},server="{s}"',
                    start,
                    [float(i % 100 == 1)] * n,
                )
            )
        for metric, base in (("cpu", 0.3), ("memory", 0.5), ("swap", 0.05), ("filesystem", 0.6)):
            name = f"stacksense_{metric}_usage_ratio"
            fh.write(f"# TYPE {name} gauge\n")
            for s in names:
                level = min(0.99, max(0.0, base + rng.uniform(-0.25, 0.35)))
                extra = ',mountpoint="/"' if metric == "filesystem" else ""
                values = [min(1.0, max(0.0, level + rng.gauss(0, 0.02))) for _ in range(n)]
                fh.writelines(
                    _series_lines(
                        name,
                        f'job="stacksense-probe",instance="{s}",server="{s}"{extra}',
                        start,
                        values,
                    )
                )
        for direction in ("receive", "transmit"):
            fh.write(f"# TYPE node_network_{direction}_bytes counter\n")
            for s in names:
                rate = rng.uniform(1e3, 1e6)
                fh.writelines(
                    _series_lines(
                        f"node_network_{direction}_bytes_total",
                        f'job="stacksense-probe",instance="{s}",server="{s}",device="eth0"',
                        start,
                        [rate * STEP * k for k in range(n)],
                    )
                )
        fh.write("# EOF\n")


def per_server_cycle(
    client: PrometheusClient, servers: list[str], now: float, config: EngineConfig
) -> dict[str, str]:
    """The naive design: the same questions, asked one server at a time."""
    heartbeats: dict[str, float] = {}
    suspended: set[str] = set()
    troubled: set[str] = set()
    for s in servers:
        sel = f'server="{escape_label_value(s)}"'
        hb = client.query(
            f"max(max_over_time(stacksense_last_heartbeat_timestamp_seconds{{{sel}}}[11m]))", now
        )
        if hb:
            heartbeats[s] = hb[0].value
        susp = client.query(f"max(stacksense_server_suspended{{{sel}}})", now)
        if susp and susp[0].value >= 1:
            suspended.add(s)
        for metric in ("cpu", "memory", "swap", "filesystem"):
            client.query(f"max(stacksense_{metric}_usage_ratio{{{sel}}})", now)
        client.query(
            f"sum(rate(node_network_receive_bytes_total{{{sel}}}[2m]))"
            f" + sum(rate(node_network_transmit_bytes_total{{{sel}}}[2m]))",
            now,
        )
        for cond in default_conditions():
            if cond.metric and cond.op and cond.threshold is not None:
                if client.query(f"{cond.metric}{{{sel}}} {cond.op} {cond.threshold:g}", now):
                    troubled.add(s)
    return decide_status(
        StatusInputs(
            servers=frozenset(servers),
            heartbeats=heartbeats,
            suspended=frozenset(suspended),
            troubled=frozenset(troubled),
            now=now,
            offline_after_seconds=config.offline_after_seconds,
        )
    )


def prom_cpu(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return float(t.user + t.system)


def measure(label: str, fn, prom_proc: psutil.Process, client: PrometheusClient):  # type: ignore[no-untyped-def]
    q0, cpu0, p0, w0 = client.queries, time.process_time(), prom_cpu(prom_proc), time.perf_counter()
    result = fn()
    wall = time.perf_counter() - w0
    return {
        "label": label,
        "wall": wall,
        "queries": client.queries - q0,
        "cpu": time.process_time() - cpu0,
        "prom_cpu": prom_cpu(prom_proc) - p0,
        "result": result,
    }


def bench_size(servers: int, sample: int, tmp: Path) -> list[dict[str, object]]:
    end = (int(time.time()) // 3600 - 3) * 3600
    data = tmp / f"data{servers}"
    om = tmp / f"history{servers}.om"
    t0 = time.perf_counter()
    write_history(om, servers, end)
    t1 = time.perf_counter()
    subprocess.run(
        [PROMTOOL, "tsdb", "create-blocks-from", "openmetrics", str(om), str(data)],
        check=True,
        capture_output=True,
    )
    t2 = time.perf_counter()
    om.unlink()
    print(
        f"\n== {servers:,} servers: history written in {t1 - t0:.1f} s, "
        f"backfilled in {t2 - t1:.1f} s"
    )
    rows = []
    with prometheus(tmp, {"global": {"scrape_interval": "15s"}}, data_dir=data) as p:
        proc = psutil.Process(p.proc.pid)
        config = EngineConfig(
            prometheus_url=p.url,
            state_file=tmp / f"state{servers}.json",
            prometheus_timeout_seconds=120,
        )
        engine = Engine(config, default_conditions())
        p.wait_for_series(f"up @ {end}", timeout=60)
        # The detectors' periodic snapshot is measured on its own (every 10 min by default).
        engine.anomalies_saved_at = end - 2 * STEP
        # First cycle: anomaly trackers are created; second: the steady state. The first
        # runs WATCHED seconds earlier: the engine calls a server offline only once it has
        # itself watched longer than the offline threshold (a fresh engine says unknown).
        first = measure(
            "engine, first cycle", lambda: engine.run_cycle(end - WATCHED), proc, engine.client
        )
        engine.run_cycle(end - STEP)  # catches up the points in between (not measured)
        steady = measure("engine, steady cycle", lambda: engine.run_cycle(end), proc, engine.client)
        for row in (first, steady):
            report = row["result"]
            assert report.ok, report.error  # type: ignore[attr-defined]
            row["statuses"] = len(report.statuses)  # type: ignore[attr-defined]
            rows.append(row)
        snap = measure(
            "anomaly state snapshot (periodic)",
            lambda: engine.save_anomalies(end),
            proc,
            engine.client,
        )
        snap["statuses"] = len(engine.anomalies)
        size = engine.anomaly_state_path().stat().st_size
        names = [f"srv{i:05d}" for i in range(servers)]
        chosen = names if servers <= sample else random.Random(7).sample(names, sample)
        client = PrometheusClient(p.url, timeout=60)
        naive = measure(
            f"per-server ({len(chosen):,} servers)",
            lambda: per_server_cycle(client, chosen, end, config),
            proc,
            client,
        )
        decided = naive["result"]
        engine_says = steady["result"].statuses  # type: ignore[attr-defined]
        # The per-server approach knows nothing of the pipeline's health, so compare only
        # where the engine decided (not unknown/pending because of what it could see).
        differ = {
            s: (decided[s], engine_says[s])
            for s in chosen
            if decided[s] in ("offline", "suspended")
            and decided[s] != engine_says[s]
            and engine_says[s] not in ("unknown", "pending")
        }
        undecided = sum(1 for s in chosen if engine_says[s] in ("unknown", "pending"))
        print(f"engine: {undecided} of {len(chosen)} sampled servers unknown or pending")
        assert not differ, f"per-server vs engine: {dict(list(differ.items())[:5])}"
        naive["statuses"] = len(chosen)
        rows.append(snap)
        rows.append(naive)
        if len(chosen) < servers:
            k = servers / len(chosen)
            rows.append(
                {
                    "label": f"per-server, extrapolated x{k:g}",
                    "wall": float(naive["wall"]) * k,  # type: ignore[arg-type]
                    "queries": int(naive["queries"] * k),  # type: ignore[operator]
                    "cpu": float(naive["cpu"]) * k,  # type: ignore[arg-type]
                    "prom_cpu": float(naive["prom_cpu"]) * k,  # type: ignore[arg-type]
                    "statuses": servers,
                }
            )
    print(f"anomaly state file: {size / 1e6:.1f} MB for {len(engine.anomalies):,} series")
    print(
        f"{'approach':<34} {'wall s':>9} {'queries':>9} {'engine CPU s':>13} "
        f"{'Prometheus CPU s':>17} {'servers':>8}"
    )
    for r in rows:
        print(
            f"{r['label']:<34} {r['wall']:>9.3f} {r['queries']:>9,} {r['cpu']:>13.3f} "
            f"{r['prom_cpu']:>17.2f} {r['statuses']:>8,}"
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--servers", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument(
        "--sample",
        type=int,
        default=1000,
        help="time the per-server approach on at most this many servers",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="rules-bench-") as tmp:
        for n in args.servers:
            size_dir = Path(tmp) / str(n)
            size_dir.mkdir()
            bench_size(n, args.sample, size_dir)
    print("\nTargets: engine cycle <= 1 s at 1,000 servers, <= 5 s at 10,000, <= 10 queries.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
