"""The stages of one probe timed in isolation, in this process, on real sshd output.

Complements the py-spy profile with exact figures: CPU seconds from
time.process_time() (every thread of this process, so paramiko's transport
thread is included) over many repetitions of one stage at a time, the best of
five rounds so that other load on the machine disturbs it less:

- SSH round-trip floor: `true` in the shell kept on a pooled connection;
- SSH run of the probe script: the same plus transferring its output;
- split: `split_sections` of the captured output;
- collectors: every collector of the module parsing the split output;
- render: the text exposition of what they produced;
- whole probe without SSH: `Prober.probe` with the captured output (split,
  collectors, render and the glue around them).

The parse stages cycle through three outputs captured a moment apart, over
TARGETS targets with their own state, so that what changes between two probes
of a host (counters) misses the memo and the text-keyed caches as it would in
production, and what does not (uname, NIC speeds...) hits it. On an idle
machine some counters may not move within the capture; the stage figures are
then slightly optimistic.

The HTTP layer is what remains of the exporter's CPU per probe measured over
HTTP once these are taken away.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench._exporter_procs import tree_cpu_seconds


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


TARGETS = 20
CAPTURES = 3


def stage_costs(
    inventory_path: Path, target: str, repeat: int = 200, sshd_pids: list[int] | None = None
) -> dict[str, Any]:
    """CPU ms per stage for `target` of the inventory (needs a reachable sshd).

    With `sshd_pids`, also the monitored side's CPU per run of the steady script
    on that one connection: one long-lived shell accumulates every run, so the
    10 ms granularity of /proc's CPU times costs at most 10 ms over all runs.
    """
    # Imported here so that --exporter-src (prepended to sys.path) decides which code runs.
    from exporter.collectors import ProbeContext
    from exporter.command import split_sections
    from exporter.config import load_inventory
    from exporter.exposition import render
    from exporter.heartbeats import HeartbeatStore
    from exporter.probe import Prober, script_for

    try:
        from exporter.probe import cheap_collectors
    except ImportError:  # an exporter from before cheap sections (--exporter-src)

        def cheap_collectors(collectors: tuple[str, ...], state: dict[str, Any]) -> tuple[str, ...]:
            return ()

    from exporter.ssh_pool import CommandResult, SshPool

    inventory = load_inventory(inventory_path)
    server = inventory.servers[target]
    module = inventory.modules[server.module]
    one_write = getattr(module, "one_write", False)  # older --exporter-src have no such option

    def script_for_module(cheap: tuple[str, ...] = ()) -> str:
        return (
            script_for(module.collectors, cheap, one_write)
            if one_write
            else script_for(module.collectors, cheap)
        )

    script = script_for_module()
    pool = SshPool(inventory)
    try:

        def run(command: str) -> CommandResult:
            return pool.run(server, command, time.monotonic() + 30)

        outputs = []
        for _ in range(CAPTURES):
            outputs.append(run(script).stdout)
            time.sleep(0.3)  # let counters move between the captures
        output = outputs[0]
        # The script as the prober runs it from the second probe on (cheap df where safe).
        first = ProbeContext(server.name, state={})
        Prober(pool, HeartbeatStore())._collect(module, split_sections(output), first)  # noqa: SLF001
        cheap = cheap_collectors(module.collectors, first.state)
        steady = script_for_module(cheap) if cheap else script
        exec_floor = _cpu_ms(lambda: run("true"), repeat)
        host0 = tree_cpu_seconds(sshd_pids) if sshd_pids else 0.0
        exec_script = _cpu_ms(lambda: run(steady), repeat)
        # _cpu_ms ran it once to warm up, then `repeat` // 5 * 5 times.
        runs = 1 + max(1, repeat // 5) * 5
        host_ms = (tree_cpu_seconds(sshd_pids) - host0) / runs * 1e3 if sshd_pids else float("nan")
    finally:
        pool.close()

    calls = itertools.count()

    class Canned:
        """A runner that returns the captured outputs in turn: the probe without SSH."""

        def run(
            self,
            server: object,
            command: str,
            deadline: float,
            *,
            max_output: int = 0,
            prelude: str = "",
        ) -> CommandResult:
            return CommandResult(0, outputs[next(calls) % CAPTURES])

        def connection_id(self, server: object) -> int:
            return 0

    prober = Prober(Canned(), HeartbeatStore())
    split = [split_sections(o) for o in outputs]
    servers = [dataclasses.replace(server, name=f"{server.name}-{i}") for i in range(TARGETS)]
    states: list[dict[str, Any]] = [{} for _ in range(TARGETS)]
    turn = itertools.count()

    def collect() -> list[Any]:
        i = next(turn)
        ctx = ProbeContext(servers[i % TARGETS].name, state=states[i % TARGETS])
        return prober._collect(module, split[i % CAPTURES], ctx)[0]  # noqa: SLF001 - one stage

    families = collect()
    return {
        "output_bytes": len(output.encode()),
        "ssh_exec_floor_ms": exec_floor,
        "ssh_exec_script_ms": exec_script,
        "host_script_ms": host_ms,
        "split_ms": _cpu_ms(lambda: split_sections(outputs[next(turn) % CAPTURES]), repeat),
        "collectors_ms": _cpu_ms(collect, repeat),
        "render_ms": _cpu_ms(lambda: render(families), repeat),
        "probe_without_ssh_ms": _cpu_ms(
            lambda: prober.probe(servers[next(turn) % TARGETS], module, 10.0), repeat
        ),
    }


def print_stages(stages: dict[str, Any], http_ms_per_probe: float) -> None:
    """Print the stage table with the HTTP remainder."""
    rows = [
        (
            "monitored host: the steady script, one connection (sshd tree)",
            stages.get("host_script_ms", float("nan")),
        ),
        ("SSH round-trip floor (`true` in the kept shell)", stages["ssh_exec_floor_ms"]),
        (
            f"SSH run of the probe script ({stages['output_bytes']} bytes out)",
            stages["ssh_exec_script_ms"],
        ),
        ("split output into sections", stages["split_ms"]),
        ("collectors parse", stages["collectors_ms"]),
        ("render text exposition", stages["render_ms"]),
        ("whole probe without SSH (split+parse+render+glue)", stages["probe_without_ssh_ms"]),
        ("HTTP + threads + everything else (remainder)", http_ms_per_probe),
    ]
    print("\n  probe stages timed in isolation (CPU ms per probe):")
    for name, ms in rows:
        print(f"    {ms:6.2f} ms  {name}")
