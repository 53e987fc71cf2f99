"""Benchmark the anomaly detector: NAB scores, throughput and memory per series.

Run from the repository root::

    python3 bench/nab_bench.py            # NAB (3 profiles) + throughput + memory
    python3 bench/nab_bench.py --no-nab   # throughput + memory only

NAB: runs ``../shared/tools/run_detector.py`` with ``python -m rules.detect_csv
{input}`` over ``../shared/datasets/nab/data`` (one process per file, fresh
state, one parameter set) and prints the normalised score of each profile.
Throughput: ``Detector.update`` on a long synthetic series, CPU time of one
core (``time.process_time``). Memory: the JSON state size and the
``tracemalloc`` footprint of many warmed-up detectors.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import subprocess
import sys
import time
import tracemalloc

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from rules.detector import Detector  # noqa: E402

SHARED = os.path.normpath(os.path.join(ROOT, "..", "shared"))
PROFILES = ("standard", "reward_low_FP_rate", "reward_low_FN_rate")


def synthetic(n: int, seed: int = 42) -> list[tuple[float, float]]:
    """A noisy daily cycle with occasional spikes, level shifts and NaNs."""
    rnd = random.Random(seed)
    out = []
    level = 50.0
    for i in range(n):
        if rnd.random() < 1e-4:
            level += rnd.gauss(0, 20)
        v = level + 10 * math.sin(2 * math.pi * i / 288) + rnd.gauss(0, 1)
        if rnd.random() < 1e-3:
            v += rnd.gauss(0, 50)
        if rnd.random() < 1e-4:
            v = float("nan")
        out.append((1.4e9 + 300.0 * i, v))
    return out


def throughput(n: int = 1_000_000) -> float:
    """Points per CPU-second of Detector.update on one core."""
    pts = synthetic(n)
    det = Detector()
    update = det.update
    t0 = time.process_time()
    for t, v in pts:
        update(t, v)
    return n / (time.process_time() - t0)


def memory(n_series: int = 1000, n_points: int = 5000) -> tuple[float, float]:
    """(bytes of JSON state, bytes of Python heap) per warmed-up series."""
    pts = synthetic(n_points, seed=7)
    probe = Detector()
    for t, v in pts:
        probe.update(t, v)
    json_bytes = len(json.dumps(probe.get_state()))
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    dets = []
    for _ in range(n_series):
        dets.append(Detector.from_state(json.loads(json.dumps(probe.get_state()))))
    for d in dets:  # a few more points so every buffer is touched
        for t, v in pts[-10:]:
            d.update(t + 1e6, v)
    heap = (tracemalloc.get_traced_memory()[0] - before) / n_series
    tracemalloc.stop()
    return float(json_bytes), heap


def nab(out_dir: str, jobs: int) -> dict[str, float]:
    """Run the shared NAB runner with --score; return {profile: score}."""
    cmd = [
        sys.executable,
        os.path.join(SHARED, "tools", "run_detector.py"),
        "--cmd",
        f"{sys.executable} -m rules.detect_csv {{input}}",
        "--data",
        os.path.join(SHARED, "datasets", "nab", "data"),
        "--labels",
        os.path.join(SHARED, "datasets", "nab", "combined_windows.json"),
        "--out",
        out_dir,
        "--score",
        "--jobs",
        str(jobs),
    ]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    sys.stdout.write(proc.stdout)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"run_detector.py failed with exit code {proc.returncode}")
    scores = {}
    for prof in PROFILES:
        m = re.search(rf"^{prof}\s+(-?[\d.]+)", proc.stdout, re.M)
        if m:
            scores[prof] = float(m.group(1))
    return scores


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-nab", action="store_true", help="skip the NAB run")
    ap.add_argument("--out", default="/tmp/nab_out/stacksense", help="NAB results folder")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--points", type=int, default=1_000_000, help="throughput series length")
    args = ap.parse_args(argv)
    if not args.no_nab:
        t0 = time.time()
        scores = nab(args.out, args.jobs)
        print(
            f"NAB (41 files, {time.time() - t0:.0f} s): "
            + "  ".join(f"{p} {scores.get(p, float('nan')):.1f}" for p in PROFILES)
        )
    pps = throughput(args.points)
    print(f"throughput: {pps:,.0f} points/s per core (Detector.update, {args.points:,} points)")
    js, heap = memory()
    print(f"memory per series: {js / 1024:.1f} KiB JSON state, {heap / 1024:.1f} KiB heap")
    return 0


if __name__ == "__main__":
    sys.exit(main())
