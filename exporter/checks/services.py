"""Service checks: systemd units and process names, read in the probe's round trip.

    stacksense_service_up{service}              1 when the service runs, else 0
    stacksense_service_state{service,state}     1 for the unit's ActiveState/SubState
                                                ("active/running"), else absent
    stacksense_service_processes{service}       processes matching its process/cmdline

(`server` is added by Prometheus from the /sd target labels, as for every probe
series.) A service with a `unit` is up when the unit is active; with only a
`process` or `cmdline`, when at least one process matches. Without systemd (no
systemctl, or not booted with it: containers, old distributions) a service that
also names a process falls back to the process match; one that names only a unit
is down with state "no_systemd", which says why.

Cost on the host: one `systemctl show` for all units (only if a unit is named, and
only on the first probe of a connection to a host without systemd), one
`head` over /proc/*/comm (only if a process is named), one `grep` over
/proc/*/cmdline (only if a cmdline pattern is given).
"""

from __future__ import annotations

import shlex
from collections import Counter
from collections.abc import Mapping
from typing import Any

from exporter.checks import PREFIX_LINES
from exporter.checks_config import Checks
from exporter.collectors._common import label_text
from exporter.exposition import Family, gauge

UNITS = "svc.units"
COMMS = "svc.comms"
CMDLINES = "svc.cmdlines"
NO_SYSTEMD = "@@no-systemd@@"
# In a target's state: its last probe found no systemd (the prober then skips systemctl
# for the rest of that connection: a host does not gain systemd without a reboot).
NO_SYSTEMD_SEEN = "svc.no_systemd"


def sections(checks: Checks, no_systemd: bool = False) -> dict[str, str]:
    """`no_systemd`: this connection's host said so already; skip systemctl (~5 ms)."""
    services = checks.services
    out: dict[str, str] = {}
    units = [s.unit for s in services if s.unit]
    if units and no_systemd:
        out[UNITS] = f"echo '{NO_SYSTEMD}'"
    elif units:
        names = " ".join(shlex.quote(u) for u in dict.fromkeys(units))
        # `systemctl show` prints one block per unit, in the order asked, blank-line
        # separated. Not booted with systemd, it prints nothing and fails.
        out[UNITS] = (
            f"systemctl show --property=Id,LoadState,ActiveState,SubState -- {names} "
            f"|| echo '{NO_SYSTEMD}'"
        )
    if any(s.process for s in services):
        out[COMMS] = "head -q -n 1 /proc/[0-9]*/comm"
    if any(s.cmdline for s in services):
        # One line per process (arguments NUL-separated), prefixed so a command line
        # can never forge a section marker.
        out[CMDLINES] = f"grep -ash '' /proc/[0-9]*/cmdline | {PREFIX_LINES}"
    return out


def parse_units(text: str) -> dict[str, dict[str, str]] | None:
    """`{unit: {"ActiveState": ..., "SubState": ..., "LoadState": ...}}`; None without systemd."""
    if NO_SYSTEMD in text or not text.strip():
        return None
    units: dict[str, dict[str, str]] = {}
    for block in text.strip().split("\n\n"):
        props = dict(line.partition("=")[::2] for line in block.splitlines() if "=" in line)
        if "Id" in props:
            units[props["Id"]] = props
    return units


def collect(sections: Mapping[str, str], checks: Checks, state: dict[str, Any]) -> list[Family]:
    services = checks.services
    if not services:
        return []
    units = parse_units(sections.get(UNITS, "")) if UNITS in sections else None
    state[NO_SYSTEMD_SEEN] = UNITS in sections and units is None
    comms = Counter(line.strip() for line in sections.get(COMMS, "").splitlines())
    cmdlines = [
        line[1:].replace("\0", " ").strip()
        for line in sections.get(CMDLINES, "").splitlines()
        if line.startswith("|")
    ]
    up_fam = gauge(
        "stacksense_service_up",
        "Whether the service runs (unit active, or a matching process when no unit is checked).",
    )
    state_fam = gauge(
        "stacksense_service_state",
        "The unit's state (ActiveState/SubState) or no_systemd/not_found, 1 for the current.",
    )
    procs_fam = gauge(
        "stacksense_service_processes",
        "Processes matching the service's process name or command line.",
    )
    for svc in services:
        count: int | None = None
        if svc.process or svc.cmdline:
            count = 0
            if svc.process:
                count += comms.get(svc.process, 0)
            if svc.cmdline:
                count += sum(1 for c in cmdlines if svc.cmdline.search(c))
            procs_fam.samples.append((label_text(service=svc.name), float(count)))
        if svc.unit:
            props = units.get(svc.unit) if units is not None else None
            if units is None:
                unit_state = "no_systemd"
                up = bool(count) if count is not None else False
            elif props is None or props.get("LoadState") == "not-found":
                unit_state, up = "not_found", False
            else:
                active, sub = props.get("ActiveState", ""), props.get("SubState", "")
                unit_state, up = f"{active}/{sub}", active == "active"
            state_fam.samples.append((label_text(service=svc.name, state=unit_state), 1.0))
        else:
            up = bool(count)
        up_fam.samples.append((label_text(service=svc.name), 1.0 if up else 0.0))
    return [f for f in (up_fam, state_fam, procs_fam) if f.samples]
