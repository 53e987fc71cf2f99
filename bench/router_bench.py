"""Benchmark: POST /api/v2/alerts on the StackSense router vs a real Alertmanager, same run.

    python -m bench.router_bench [--seconds 5] [--clients 4] [--batches 1,10,64,100]
                                 [--memory-alerts 100000] [--baseline-src DIR --repeat 6]

Both servers run on this machine at the same time of the run, one after the other, under the
same load generator (client processes, keep-alive connections, pre-built bodies). The router
runs under gunicorn as `stacksense-router serve` runs it (gthread with keep-alive linger) and
replies only after the batch is committed to SQLite (WAL). Prints alerts/s, p50/p99 request
latency and the router/Alertmanager ratio per batch size, then resident memory with
--memory-alerts active alerts.

--baseline-src DIR (a checkout of another commit, e.g. `git worktree add /tmp/base <commit>`)
runs that tree's router too, in the same rounds: each round runs Alertmanager and both
routers back to back, in an order that rotates from round to round, so drift of a shared
machine falls on all three alike. It prints each router's mean ratio to Alertmanager over
the rounds (each ratio taken within its round) and the change from the baseline.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import requests
import yaml

REPO = Path(__file__).resolve().parent.parent
ALERTMANAGER = "/usr/bin/prometheus-alertmanager"
TOKEN = "bench-token"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url} exited with {proc.returncode}")
        try:
            if requests.get(f"{url}/-/ready", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} not ready after {timeout}s")


@dataclass
class Server:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    headers: dict[str, str]

    def pids(self) -> list[int]:
        root = psutil.Process(self.proc.pid)
        return [root.pid, *(c.pid for c in root.children(recursive=True))]

    def cpu_seconds(self) -> float:
        total = 0.0
        for pid in self.pids():
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system
        return total

    def rss_bytes(self) -> int:
        return sum(psutil.Process(pid).memory_info().rss for pid in self.pids())

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def start_alertmanager(tmp: Path) -> Server:
    port = free_port()
    cfg = tmp / "am.yml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "route": {"receiver": "null", "group_by": ["alertname", "server"]},
                "receivers": [{"name": "null"}],
            }
        )
    )
    (tmp / "am-data").mkdir()
    proc = subprocess.Popen(
        [
            ALERTMANAGER,
            f"--config.file={cfg}",
            f"--storage.path={tmp / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
            "--log.level=warn",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    wait_ready(f"http://127.0.0.1:{port}", proc)
    return Server("alertmanager", port, proc, {"Content-Type": "application/json"})


def start_router(
    tmp: Path,
    threads: int,
    workers: int,
    worker_class: str = "alert_router.cli.KeepAliveWorker",
    repo: Path = REPO,
) -> Server:
    port = free_port()
    (tmp / "tokens").write_text(TOKEN + "\n")
    cfg = tmp / "router.yml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "route": {"receiver": "null", "group_by": ["alertname", "server"]},
                "receivers": [{"name": "null"}],
                "storage": {"path": str(tmp / "router.db")},
                "auth": {"tokens_file": str(tmp / "tokens")},
            }
        )
    )
    env = {**os.environ, "STACKSENSE_ROUTER_CONFIG": str(cfg), "PYTHONPATH": str(repo)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-k",
            worker_class,
            "--threads",
            str(threads),
            "-w",
            str(workers),
            "-b",
            f"127.0.0.1:{port}",
            "--backlog",
            "2048",
            "alert_router.wsgi:app",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(tmp / "router.log", "wb"),  # noqa: SIM115
        start_new_session=True,
        cwd=tmp,
    )
    wait_ready(f"http://127.0.0.1:{port}", proc)
    return Server(
        "router",
        port,
        proc,
        {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"},
    )


def _bodies(client: int, batch: int, count: int, run: str) -> list[bytes]:
    bodies = []
    n = 0
    for _ in range(count):
        alerts = []
        for _ in range(batch):
            alerts.append(
                {
                    "labels": {
                        "alertname": "BenchAlert",
                        "server": f"srv-{n % 1000}",
                        "run": run,
                        "client": str(client),
                        "n": str(n),
                    },
                    "annotations": {"summary": "benchmark alert"},
                    "generatorURL": "http://prometheus:9090/graph",
                }
            )
            n += 1
        bodies.append(json.dumps(alerts).encode())
    return bodies


def _client(
    args: tuple[int, int, dict[str, str], int, float, str, float],
) -> tuple[list[float], float]:
    port, batch, headers, client, seconds, run, start_at = args
    bodies = _bodies(client, batch, max(20, 4000 // batch), run)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    latencies: list[float] = []
    while time.time() < start_at:
        time.sleep(0.001)
    began = time.time()
    end = start_at + seconds
    i = 0
    while time.time() < end:
        body = bodies[i % len(bodies)]
        i += 1
        t0 = time.perf_counter()
        conn.request("POST", "/api/v2/alerts", body=body, headers=headers)
        resp = conn.getresponse()
        resp.read()
        latencies.append(time.perf_counter() - t0)
        if resp.status != 200:
            raise RuntimeError(f"HTTP {resp.status} from port {port}")
    conn.close()
    return latencies, time.time() - began


def load(
    server: Server, batch: int, clients: int, seconds: float, pool: mp.pool.Pool
) -> tuple[float, float, float, float, float]:
    """alerts/s, p50 and p99 latency (s), server CPU s per alert (all work included), and
    the seconds the router's dispatcher still needed after the load to merge its backlog."""
    run = f"{server.name}-{batch}-{time.time()}"
    cpu_before = server.cpu_seconds()
    start_at = time.time() + 1.5  # let every client build its bodies first
    results = pool.map(
        _client,
        [(server.port, batch, server.headers, c, seconds, run, start_at) for c in range(clients)],
    )
    latencies = sorted(x for r, _ in results for x in r)
    rate = sum(len(r) * batch / took for r, took in results)
    settle_started = time.perf_counter()
    settle(server)  # the router's dispatcher finishes merging what was accepted
    backlog = time.perf_counter() - settle_started if server.name == "router" else 0.0
    cpu = (server.cpu_seconds() - cpu_before) / (len(latencies) * batch)
    return (
        rate,
        latencies[len(latencies) // 2],
        latencies[int(len(latencies) * 0.99)],
        cpu,
        backlog,
    )


def fill(server: Server, total: int) -> None:
    """Post `total` distinct firing alerts in batches of 500."""
    session = requests.Session()
    for start in range(0, total, 500):
        alerts = [
            {
                "labels": {"alertname": "MemAlert", "server": f"srv-{i % 1000}", "n": str(i)},
                "annotations": {"summary": "memory test"},
            }
            for i in range(start, min(start + 500, total))
        ]
        resp = session.post(
            f"http://127.0.0.1:{server.port}/api/v2/alerts",
            data=json.dumps(alerts),
            headers=server.headers,
            timeout=60,
        )
        resp.raise_for_status()


def settle(server: Server, timeout: float = 120.0) -> None:
    if server.name != "router":
        time.sleep(1)
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = requests.get(f"http://127.0.0.1:{server.port}/metrics", timeout=10).text
        if "stacksense_router_inbox_requests 0.0" in text:
            return
        time.sleep(0.1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--batches", default="1,10,64,100")
    parser.add_argument("--threads", type=int, default=8, help="router gunicorn threads")
    parser.add_argument("--workers", type=int, default=2, help="router gunicorn workers")
    parser.add_argument("--memory-alerts", type=int, default=100_000)
    parser.add_argument(
        "--repeat",
        type=int,
        default=2,
        help="runs per point, interleaved; the best is kept (shared machines)",
    )
    parser.add_argument(
        "--baseline-src",
        type=Path,
        help="another checkout whose router runs in the same rounds (see the module doc)",
    )
    args = parser.parse_args(argv)
    if args.baseline_src is not None:
        return compare(args)
    batches = [int(b) for b in args.batches.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="router-bench-"))
    version = (
        subprocess.run([ALERTMANAGER, "--version"], capture_output=True, text=True).stdout.split(
            "\n"
        )[0]
        or "alertmanager"
    )
    print(
        f"# {version}; router: gunicorn KeepAliveWorker, "
        f"{args.workers} worker(s) x {args.threads} "
        f"threads, SQLite WAL synchronous=NORMAL; {args.clients} client processes, "
        f"{args.seconds:g}s per point, {os.cpu_count()} CPUs"
    )
    rows = []
    with mp.Pool(args.clients) as pool:
        for batch in batches:
            point: dict[str, tuple[float, float, float, float, float]] = {}
            for rep in range(args.repeat):
                for name in ("alertmanager", "router"):
                    workdir = tmp / f"{name}-{batch}-{rep}"
                    workdir.mkdir()
                    server = (
                        start_alertmanager(workdir)
                        if name == "alertmanager"
                        else start_router(workdir, args.threads, args.workers)
                    )
                    try:
                        got = load(server, batch, args.clients, args.seconds, pool)
                    finally:
                        server.stop()
                    if name not in point or got[0] > point[name][0]:
                        point[name] = got
            rows.append((batch, point))
            am, rt = point["alertmanager"], point["router"]
            print(
                f"batch {batch:>3}: alertmanager {am[0]:>7.0f} alerts/s "
                f"p50 {am[1] * 1000:5.1f} ms p99 {am[2] * 1000:6.1f} ms "
                f"cpu {am[3] * 1e6:5.0f} us/alert | "
                f"router {rt[0]:>7.0f} alerts/s p50 {rt[1] * 1000:5.1f} ms "
                f"p99 {rt[2] * 1000:6.1f} ms cpu {rt[3] * 1e6:5.0f} us/alert "
                f"backlog merged {rt[4]:4.1f}s | "
                f"ratio {rt[0] / am[0]:.2f}x (cpu/alert ratio {am[3] / rt[3]:.2f}x)",
                flush=True,
            )
    if args.memory_alerts:
        for name in ("alertmanager", "router"):
            workdir = tmp / f"{name}-memory"
            workdir.mkdir()
            server = (
                start_alertmanager(workdir)
                if name == "alertmanager"
                else start_router(workdir, args.threads, args.workers)
            )
            try:
                before = server.rss_bytes()
                t0 = time.perf_counter()
                fill(server, args.memory_alerts)
                settle(server)
                took = time.perf_counter() - t0
                print(
                    f"memory {name}: {server.rss_bytes() / 2**20:.0f} MiB RSS with "
                    f"{args.memory_alerts} active alerts (idle {before / 2**20:.0f} MiB; "
                    f"filled and settled in {took:.1f}s)",
                    flush=True,
                )
            finally:
                server.stop()
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


def compare(args: argparse.Namespace) -> int:
    """--baseline-src: Alertmanager, this router and the baseline's, rotating, per round."""
    baseline = args.baseline_src.resolve()
    if not (baseline / "alert_router" / "wsgi.py").is_file():
        raise SystemExit(f"--baseline-src {baseline}: not a StackSense checkout")
    tmp = Path(tempfile.mkdtemp(prefix="router-bench-"))
    repos = {"router": REPO, "baseline": baseline}
    print(
        f"# router {REPO} vs baseline {baseline}; {args.repeat} rounds per batch, "
        f"{args.workers} worker(s) x {args.threads} threads, {args.clients} client processes, "
        f"{args.seconds:g}s per run, {os.cpu_count()} CPUs"
    )
    with mp.Pool(args.clients) as pool:
        for batch in (int(b) for b in args.batches.split(",")):
            ratios: dict[str, list[float]] = {"router": [], "baseline": []}
            cpu: dict[str, list[float]] = {"router": [], "baseline": []}
            for rnd in range(args.repeat):
                names = ["alertmanager", "router", "baseline"]
                names = names[rnd % 3 :] + names[: rnd % 3]
                rates: dict[str, float] = {}
                for name in names:
                    workdir = tmp / f"{name}-{batch}-{rnd}"
                    workdir.mkdir()
                    server = (
                        start_alertmanager(workdir)
                        if name == "alertmanager"
                        else start_router(workdir, args.threads, args.workers, repo=repos[name])
                    )
                    try:
                        got = load(server, batch, args.clients, args.seconds, pool)
                    finally:
                        server.stop()
                    rates[name] = got[0]
                    if name in cpu:
                        cpu[name].append(got[3])
                for name in ratios:
                    ratios[name].append(rates[name] / rates["alertmanager"])
                print(
                    f"batch {batch:>3} round {rnd}: alertmanager {rates['alertmanager']:.0f}, "
                    f"router {rates['router']:.0f}, baseline {rates['baseline']:.0f} alerts/s",
                    flush=True,
                )
            mean = {name: sum(r) / len(r) for name, r in ratios.items()}
            per_alert = {name: sum(c) / len(c) * 1e6 for name, c in cpu.items()}
            print(
                f"batch {batch:>3}: router {mean['router']:.2f}x, baseline "
                f"{mean['baseline']:.2f}x Alertmanager (means of {args.repeat} rounds): "
                f"{mean['router'] / mean['baseline'] - 1:+.1%}; CPU per alert "
                f"{per_alert['router']:.0f} vs {per_alert['baseline']:.0f} us",
                flush=True,
            )
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
