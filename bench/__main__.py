"""`make bench`: every benchmark, one after the other, each printing its own table.

`python -m bench` runs them all; `python -m bench NAME ...` runs the named ones. The
current figures live in bench/RESULTS.md.
"""

from __future__ import annotations

import importlib
import sys

# Module name -> what it measures, in the order they run.
BENCHMARKS = {
    "exporter_bench": "exporter: probe CPU and latency beside node_exporter",
    "dashboard_coverage": "exporter: Node Exporter Full panels answered",
    "diagnose_bench": "exporter: a diagnostic run's cost beside a probe's",
    "rules_bench": "rule engine: cycle time and queries by fleet size",
    "router_bench": "alert router beside Alertmanager: ingest throughput by batch",
    "nab_bench": "anomaly detector: NAB scores, throughput and memory",
    "nab_cv": "anomaly detector: leave-one-category-out cross-validation",
    "console_bench": "console: fleet view server time and page weight at 1,000 and 10,000 servers",
}


def main(argv: list[str] | None = None) -> int:
    names = (sys.argv[1:] if argv is None else argv) or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(
            f"unknown benchmark(s): {', '.join(unknown)} (known: {', '.join(BENCHMARKS)})",
            file=sys.stderr,
        )
        return 2
    failed = []
    for name in names:
        print(f"\n=== {name}: {BENCHMARKS[name]}", flush=True)
        module = importlib.import_module(f"bench.{name}")
        if module.main([]) != 0:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
