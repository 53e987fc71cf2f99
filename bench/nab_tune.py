"""Fast in-process NAB scoring of the detector, for tuning.

Run from the repository root::

    python3 bench/nab_tune.py                          # default parameters
    python3 bench/nab_tune.py -p quiet_damping=0.3 -p warmup=200
    python3 bench/nab_tune.py --per-file               # where points are won and lost
    python3 bench/nab_tune.py --flags                  # which rows: false alarms, missed windows

Loads the 41 shared NAB files once, scores each with a fresh ``Detector``
(same code path as ``rules.detect_csv``: timestamps parsed by its
``parse_timestamp``), and scores the result with the shared
``tools/nab_score.py`` functions (exhaustive threshold sweep, NAB v1.1) without
writing CSVs. The figures equal those of ``bench/nab_bench.py``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from rules.detect_csv import parse_timestamp  # noqa: E402
from rules.detector import Detector, DetectorParams, params_from_dict  # noqa: E402

SHARED = os.path.normpath(os.path.join(ROOT, "..", "shared"))
NAB = os.path.join(SHARED, "datasets", "nab")
sys.path.insert(0, os.path.join(SHARED, "tools"))

import nab_score  # noqa: E402

PROFILES = ("standard", "reward_low_FP_rate", "reward_low_FN_rate")
Series = tuple[str, list[str], list[float], list[float]]  # relpath, stamps, times, values


def load_series(only: Sequence[str] = ()) -> list[Series]:
    """Labelled NAB files (all, or those in ``only``) as (relpath, stamps, unix times, values)."""
    with open(os.path.join(NAB, "combined_windows.json")) as fh:
        rels = sorted(r for r in json.load(fh) if not only or r in only)
    out = []
    for rel in rels:
        with open(os.path.join(NAB, "data", rel), newline="") as fh:
            rows = list(csv.reader(fh))[1:]
        stamps = [r[0] for r in rows if r]
        times = [parse_timestamp(s) for s in stamps]
        values = [float(r[1]) for r in rows if r]
        out.append((rel, stamps, times, values))
    return out


def score_series(series: Series, params: DetectorParams) -> list[float]:
    """Scores of one file from a fresh detector."""
    update = Detector(params).update
    return [update(t, v) for t, v in zip(series[2], series[3], strict=True)]


def _job(args: tuple[Series, DetectorParams]) -> list[float]:
    return score_series(*args)


def run(
    corpus: list[Series],
    params: DetectorParams,
    jobs: int = 1,
    scorer: Callable[[Series, DetectorParams], list[float]] = score_series,
) -> list[list[float]]:
    """Scores of every file of ``corpus`` (fresh detector per file)."""
    if jobs > 1 and scorer is score_series:
        with ProcessPoolExecutor(jobs) as pool:
            return list(pool.map(_job, [(s, params) for s in corpus]))
    return [scorer(s, params) for s in corpus]


def file_rows(corpus: list[Series], all_scores: list[list[float]]) -> list[Any]:
    """The scorer's view of each file: scores, windows as row ranges, probation."""
    import numpy as np

    windows = nab_score.load_windows(os.path.join(NAB, "combined_windows.json"))
    files = []
    for (rel, stamps, _, _), scores in zip(corpus, all_scores, strict=True):
        ranges = nab_score.window_index_ranges(stamps, windows[rel], rel)
        files.append(
            nab_score.FileRows(
                rel, np.asarray(scores, dtype=float), ranges, nab_score.PROBATION_PERCENT
            )
        )
    return files


def evaluate(
    corpus: list[Series],
    params: DetectorParams,
    jobs: int = 1,
    scorer: Callable[[Series, DetectorParams], list[float]] = score_series,
    all_scores: list[list[float]] | None = None,
) -> dict[str, Any]:
    """Normalised NAB result per profile for ``params`` on ``corpus``."""
    if all_scores is None:
        all_scores = run(corpus, params, jobs, scorer)
    profiles = nab_score.load_profiles(os.path.join(NAB, "profiles.json"))
    files = file_rows(corpus, all_scores)
    return dict(nab_score.score_corpus(files, {p: profiles[p] for p in PROFILES}))


def flags(corpus: list[Series], all_scores: list[list[float]], threshold: float) -> list[str]:
    """Per file with something to look at: its false-alarm rows (row:score) and
    its missed windows (first-last row, highest score inside), at ``threshold``."""
    lines = []
    for f in file_rows(corpus, all_scores):
        flagged = f.scorable & (f.scores >= threshold)
        fps = [f"{i}:{f.scores[i]:.2f}" for i in flagged.nonzero()[0] if f.window_of[i] < 0]
        missed = [
            f"{a}-{b} (max {f.scores[a : b + 1].max():.2f})"
            for w, (a, b) in enumerate(f.ranges)
            if f.counted[w] and not flagged[a : b + 1].any()
        ]
        if fps or missed:
            fp_text, missed_text = " ".join(fps) or "-", " ".join(missed) or "-"
            lines.append(f"  {f.relpath}: FP {fp_text} | missed {missed_text}")
    return lines


def summary(res: dict[str, Any]) -> str:
    """One line: the three scores, threshold, windows hit and FP rows (standard)."""
    std = res["standard"]
    return (
        f"std {std['score']:.2f}  lowFP {res['reward_low_FP_rate']['score']:.2f}  "
        f"lowFN {res['reward_low_FN_rate']['score']:.2f}  thr {std['threshold']:.4g}  "
        f"win {std['windows_detected']}/{std['windows']}  fp {std['fp']}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        help="NAME=VALUE override of a DetectorParams field (repeatable)",
    )
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--per-file", action="store_true", help="per-file breakdown (standard)")
    ap.add_argument(
        "--flags",
        action="store_true",
        help="false-alarm rows and missed windows per file (standard threshold)",
    )
    args = ap.parse_args(list(argv) if argv is not None else None)
    raw: dict[str, Any] = {}
    for item in args.param:
        name, _, text = item.partition("=")
        raw[name] = json.loads(text)
    params = params_from_dict(raw)
    corpus = load_series()
    all_scores = run(corpus, params, args.jobs)
    res = evaluate(corpus, params, all_scores=all_scores)
    if args.flags:
        print("\n".join(flags(corpus, all_scores, res["standard"]["threshold"])))
    if args.per_file:
        for row in res["standard"]["per_file"]:
            print(
                f"  {row['file']:<58} {row['score']:8.3f}  win {row['windows_detected']}/"
                f"{row['windows']}  fp={row['fp']}"
            )
    print(summary(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
