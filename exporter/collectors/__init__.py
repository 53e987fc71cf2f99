"""Collectors: one module per metric family group, each with a pure `parse`.

Every collector module ends with one typed value,
`COLLECTOR = Collector(NAME, collect, files=FILES, ...)` (see
`exporter.collectors.base.Collector` for its fields), and has a line in
`exporter.collectors.registry`. Inside the module:

- `parse(text, ...)`: pure function from a section's text to plain data.
  Raises `ParseError` on garbage.
- `collect(sections, ctx) -> list[Family]`: parse the sections it needs and
  build fresh metric families. When every text a collector may read (its
  files and sections) equals the previous probe's, the probe reuses the
  families it built then (`_memo`); a collector whose output also depends on
  `ctx.state` or `ctx.now` says `memoizable=False`.
- The round-trip command reads all collectors' files with one `head -v` and
  hands each file's text over under its path (`sections["/proc/stat"]`); a
  missing file is absent. Sections that need a command (df) are shell
  snippets under a section name.

`exporter.collectors.registry.COLLECTORS` is the name → Collector table; call
sites never branch on collector names.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any


class ParseError(ValueError):
    """A section's text is not what the collector expected."""


@dataclass
class ProbeContext:
    """What a collector may know besides the text: the target and its memory.

    `state` survives between probes of the same target (per-target, in the
    connection pool), so a collector can compute rates from the previous
    probe's counters. `now` is the wall-clock time of the probe.
    """

    target: str
    now: float = field(default_factory=time.time)
    state: dict[str, Any] = field(default_factory=dict)
