"""Cost of a diagnostic run (exporter.diagnose) beside a normal probe's, on a real sshd.

    python -m bench.diagnose_bench [--runs 10] [--probes 200] [--files 20000]

One sshd on loopback, the exporter in-process. Prints, for a probe and for a
diagnostic run: wall time per run and the monitored host's CPU per run (the
sshd process tree, with its reaped children: the script's ps, df, du, ss...).
The diagnosis cache is bypassed so that every run really runs.

The loopback host is this machine, whose filesystems are usually far from
full, so `du` (the costly part) would not run. The third row mounts a tmpfs
holding --files small files in 2 levels of directories, filled to 100 %, so
that every run walks it with du, as on a host whose disk alert fired. It needs
root (mount); without root that row is skipped and said so. Other full
filesystems on the machine (another test's) add to both diagnostic rows.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from bench._exporter_procs import tree_cpu_seconds
from exporter.app import ExporterApp
from exporter.diagnose import Diagnoser
from tests.exporter.harness import server_entry, write_inventory
from tests.peers.sshd import SshdKeys, sshd

Row = tuple[str, int, float, float, float]  # what, runs, median s, max s, host CPU s/run


@contextlib.contextmanager
def full_filesystem(root: Path, files: int) -> Iterator[Path]:
    """A tmpfs with `files` 1 KiB files under 100 x 10 directories, then filled up."""
    mount = root / "full"
    mount.mkdir()
    size_mib = 16 + files * 4 // 1024  # a page per small file, and room for the filler
    subprocess.run(
        [
            "mount",
            "-t",
            "tmpfs",
            "-o",
            f"size={size_mib}m,nr_inodes={files + 2000}",
            "tmpfs",
            str(mount),
        ],
        check=True,
    )
    try:
        block = b"x" * 1024
        for i in range(files):
            directory = mount / f"d{i % 100:02d}" / f"e{i // 100 % 10}"
            if i < 1000:
                directory.mkdir(parents=True, exist_ok=True)
            (directory / f"f{i}").write_bytes(block)
        with contextlib.suppress(OSError), open(mount / "filler", "wb") as f:
            while True:  # until ENOSPC: the filesystem is then 100 % used
                f.write(b"\0" * (1 << 20))
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def measure(what: str, count: int, run: Callable[[], object], pid: int) -> Row:
    walls = []
    cpu0 = tree_cpu_seconds([pid])
    for _ in range(count):
        t0 = time.perf_counter()
        run()
        walls.append(time.perf_counter() - t0)
    cpu = tree_cpu_seconds([pid]) - cpu0
    return what, count, statistics.median(walls), max(walls), cpu / count


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.diagnose_bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--runs", type=int, default=10, help="diagnostic runs (default %(default)s)")
    p.add_argument("--probes", type=int, default=200, help="probes (default %(default)s)")
    p.add_argument(
        "--files",
        type=int,
        default=20000,
        help="files on the full filesystem du walks (default %(default)s)",
    )
    args = p.parse_args(argv)
    rows: list[Row] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        keys = SshdKeys.create(tmp / "keys")
        with sshd(tmp / "sshd", keys) as server:
            assert server.proc is not None
            pid = server.proc.pid
            known = tmp / "known_hosts"
            known.write_text(server.known_hosts_line())
            inv = write_inventory(
                tmp / "servers.yml",
                [server_entry("bench", server)],
                {"default": {"key_file": str(keys.client_key)}},
                known,
            )
            app = ExporterApp(str(inv))
            try:
                srv, module = app.resolve("bench", None)
                app.probe(srv, module, 10)  # connect and warm up

                def diagnose() -> None:
                    report = Diagnoser(app.pool).diagnose(srv)  # a new one: no cache
                    if not report["complete"]:
                        notes.append(f"incomplete run: {report['error'] or report['timed_out']}")

                rows.append(measure("probe", args.probes, lambda: app.probe(srv, module, 10), pid))
                rows.append(measure("diagnose", args.runs, diagnose, pid))
                if os.geteuid() == 0:
                    with full_filesystem(tmp, args.files):
                        rows.append(
                            measure(
                                f"diagnose, full fs ({args.files} files)", args.runs, diagnose, pid
                            )
                        )
                else:
                    notes.append("full-filesystem row skipped: mounting a tmpfs needs root")
            finally:
                app.close()
    width = max(len(r[0]) for r in rows)
    print(f"{'':{width}} {'runs':>6} {'median ms':>10} {'max ms':>10} {'host CPU ms/run':>16}")
    for what, count, median, worst, cpu in rows:
        print(
            f"{what:{width}} {count:6d} {median * 1000:10.1f} {worst * 1000:10.1f} "
            f"{cpu * 1000:16.2f}"
        )
    probe_cpu = rows[0][4]
    for what, _, _, _, cpu in rows[1:]:
        if probe_cpu > 0:
            print(f"{what}: one run costs the host as much CPU as {cpu / probe_cpu:.0f} probes")
    load = os.getloadavg()
    print(
        f"load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
        f"on {os.cpu_count()} CPUs"
    )
    for note in dict.fromkeys(notes):
        print(f"note: {note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
