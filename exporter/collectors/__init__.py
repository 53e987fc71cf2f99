"""Collectors: one module per metric family group, each with a pure `parse`.

Every collector module exposes:

- `NAME`: the collector's name (label value of `stacksense_collector_success`).
- `FILES`: paths (globs allowed) it reads; the round-trip command reads all
  collectors' files with one `grep -Hs '' ...` and hands each file's text
  over under its path (`sections["/proc/stat"]`). A missing file is absent.
- `SECTIONS` (optional): `{section name: shell snippet}` for what needs a
  command (df). Fixed strings, never built from untrusted input. Several
  collectors may share a section (same name means same snippet).
- `CHEAP_SECTIONS` (optional): cheaper snippets for some of its sections that
  are safe only on some hosts (df without `timeout` where no mount can hang).
  The probe uses them for a target while the collector's last `collect` set
  `ctx.state[cheap_sections_key(NAME)]` to True, and never again for a target
  once a probe using them timed out.
- `parse(text, ...)`: pure function from a section's text to plain data.
  Raises `ParseError` on garbage.
- `collect(sections, ctx) -> list[Family]`: parse the sections it needs and
  build fresh metric families. When every text a collector may read (its
  FILES and SECTIONS) equals the previous probe's, the probe reuses the
  families it built then (`_memo`); a collector whose output also depends on
  `ctx.state` or `ctx.now` sets `MEMOIZABLE = False`.

`exporter.collectors.registry.COLLECTORS` is the name → module table; call
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
