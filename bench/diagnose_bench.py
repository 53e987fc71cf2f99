"""Cost of a diagnostic run (exporter.diagnose) beside a normal probe's, on a real sshd.

    python -m bench.diagnose_bench [--runs 10] [--probes 200]

One sshd on loopback, the exporter in-process. Prints, for a probe and for a
diagnostic run: wall time per run and the monitored host's CPU per run (the
sshd process tree, with its reaped children: the script's ps, df, du, ss...).
The diagnosis cache is bypassed so that every run really runs. Run as root
(the loopback host is this machine; du walks only filesystems above the
threshold, so the figure depends on the machine's disks).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from bench._exporter_procs import tree_cpu_seconds
from exporter.app import ExporterApp
from exporter.diagnose import Diagnoser
from tests.exporter.harness import server_entry, write_inventory
from tests.peers.sshd import SshdKeys, sshd


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.diagnose_bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=10, help="diagnostic runs (default %(default)s)")
    p.add_argument("--probes", type=int, default=200, help="probes (default %(default)s)")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        keys = SshdKeys.create(tmp / "keys")
        with sshd(tmp / "sshd", keys) as server:
            assert server.proc is not None
            known = tmp / "known_hosts"
            known.write_text(server.known_hosts_line())
            inv = write_inventory(tmp / "servers.yml", [server_entry("bench", server)],
                                  {"default": {"key_file": str(keys.client_key)}}, known)
            app = ExporterApp(str(inv))
            try:
                srv, module = app.resolve("bench", None)
                app.probe(srv, module, 10)  # connect and warm up
                rows = []
                for what, count, run in (
                        ("probe", args.probes, lambda: app.probe(srv, module, 10)),
                        ("diagnose", args.runs,
                         lambda: Diagnoser(app.pool).diagnose(srv))):
                    walls = []
                    cpu0 = tree_cpu_seconds([server.proc.pid])
                    for _ in range(count):
                        t0 = time.perf_counter()
                        run()
                        walls.append(time.perf_counter() - t0)
                    cpu = tree_cpu_seconds([server.proc.pid]) - cpu0
                    rows.append((what, count, statistics.median(walls), max(walls),
                                 cpu / count))
            finally:
                app.close()
    print(f"{'':10} {'runs':>6} {'median ms':>10} {'max ms':>10} {'host CPU ms/run':>16}")
    for what, count, median, worst, cpu in rows:
        print(f"{what:10} {count:6d} {median * 1000:10.1f} {worst * 1000:10.1f} "
              f"{cpu * 1000:16.2f}")
    probe_cpu, diag_cpu = rows[0][4], rows[1][4]
    if probe_cpu > 0:
        print(f"one diagnostic run costs the host as much CPU as {diag_cpu / probe_cpu:.0f} "
              "probes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
