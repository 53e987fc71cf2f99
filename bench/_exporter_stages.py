"""The stages of one probe timed in isolation, in this process, on real sshd output.

Complements the py-spy profile with exact figures: CPU seconds from
time.process_time() (every thread of this process, so paramiko's transport
thread is included) over many repetitions of one stage at a time, the best of
five rounds so that other load on the machine disturbs it less:

- SSH exec floor: `true` on a pooled connection (channel open, exec, close);
- SSH exec of the probe script: the same plus transferring its output;
- split: `split_sections` of the captured output;
- collectors: every collector of the module parsing the split output;
- render: the text exposition of what they produced;
- whole probe without SSH: `Prober.probe` with the captured output (split,
  collectors, render and the glue around them).

The HTTP layer is what remains of the exporter's CPU per probe measured over
HTTP once these are taken away.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _cpu_ms(fn: Callable[[], object], repeat: int, rounds: int = 5) -> float:
    """CPU ms per call: the best of `rounds` rounds, as timeit advises on a noisy machine."""
    fn()  # warm caches, imports and the lru_cache'd script
    per_round = max(1, repeat // rounds)
    best = float("inf")
    for _ in range(rounds):
        t0 = time.process_time()
        for _ in range(per_round):
            fn()
        best = min(best, (time.process_time() - t0) / per_round)
    return best * 1e3


def stage_costs(inventory_path: Path, target: str, repeat: int = 200) -> dict[str, Any]:
    """CPU ms per stage for `target` of the inventory (needs a reachable sshd)."""
    # Imported here so that --exporter-src (prepended to sys.path) decides which code runs.
    from exporter.collectors import ProbeContext
    from exporter.command import split_sections
    from exporter.config import load_inventory
    from exporter.heartbeats import HeartbeatStore
    from exporter.metrics import render
    from exporter.probe import Prober, script_for
    from exporter.ssh_pool import CommandResult, SshPool

    inventory = load_inventory(inventory_path)
    server = inventory.servers[target]
    module = inventory.modules[server.module]
    script = script_for(module.collectors)
    pool = SshPool(inventory)
    try:
        def run(command: str) -> CommandResult:
            return pool.run(server, command, time.monotonic() + 30)

        output = run(script).stdout
        exec_floor = _cpu_ms(lambda: run("true"), repeat)
        exec_script = _cpu_ms(lambda: run(script), repeat)
    finally:
        pool.close()

    class Canned:
        """A runner that returns the captured output: the probe without SSH."""

        def run(self, server: object, command: str, deadline: float) -> CommandResult:
            return CommandResult(0, output)

    prober = Prober(Canned(), HeartbeatStore())
    sections = split_sections(output)
    ctx = ProbeContext(server.name, state={})
    families, _ = prober._collect(module, sections, ctx)  # noqa: SLF001 - timing one stage
    return {
        "output_bytes": len(output.encode()),
        "ssh_exec_floor_ms": exec_floor,
        "ssh_exec_script_ms": exec_script,
        "split_ms": _cpu_ms(lambda: split_sections(output), repeat),
        "collectors_ms": _cpu_ms(lambda: prober._collect(module, sections, ctx), repeat),  # noqa: SLF001
        "render_ms": _cpu_ms(lambda: render(families), repeat),
        "probe_without_ssh_ms": _cpu_ms(lambda: prober.probe(server, module, 10.0), repeat),
    }


def print_stages(stages: dict[str, Any], http_ms_per_probe: float) -> None:
    """Print the stage table with the HTTP remainder."""
    rows = [
        ("SSH exec floor (`true`)", stages["ssh_exec_floor_ms"]),
        (f"SSH exec of the probe script ({stages['output_bytes']} bytes out)",
         stages["ssh_exec_script_ms"]),
        ("split output into sections", stages["split_ms"]),
        ("collectors parse", stages["collectors_ms"]),
        ("render text exposition", stages["render_ms"]),
        ("whole probe without SSH (split+parse+render+glue)", stages["probe_without_ssh_ms"]),
        ("HTTP + threads + everything else (remainder)", http_ms_per_probe),
    ]
    print("\n  probe stages timed in isolation (CPU ms per probe):")
    for name, ms in rows:
        print(f"    {ms:6.2f} ms  {name}")
