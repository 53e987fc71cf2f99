"""The collector contract: one `Collector` value per collector module, checked by mypy.

A collector module ends with `COLLECTOR = Collector(NAME, collect, files=FILES)`
and `exporter.collectors.registry` lists it; the probe, the round-trip
command and the memo only ever see this value, never the module, so a
collector whose `collect` has the wrong signature fails type checking rather
than a probe.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from exporter.collectors import ProbeContext
from exporter.exposition import Family

CollectFunction = Callable[[Mapping[str, str], ProbeContext], list[Family]]
"""Sections of one probe (`{file path or section name: text}`) → fresh metric families."""


# eq=False: identity is what tells two collectors apart (a sections mapping is
# not hashable, and two collectors with equal fields are still two collectors).
@dataclass(frozen=True, eq=False)
class Collector:
    """What the probe needs to know about one collector.

    - `name`: the collector's name (label value of `stacksense_collector_success`,
      the name a module lists under `collectors:` in the inventory).
    - `collect`: parse the sections it needs and build fresh metric families;
      raises `ParseError` on garbage.
    - `files`: paths (globs allowed) it reads; the round-trip command reads every
      collector's files in one `head` and hands each file's text over under its
      path. A missing file is absent from the sections.
    - `sections`: `{section name: shell snippet}` for what needs a command (df).
      Fixed strings, never built from untrusted input. Several collectors may
      share a section (same name means same snippet).
    - `cheap_sections`: cheaper snippets for some of its sections that are safe
      only on some hosts (df without `timeout` where no mount can hang); used for
      a target while the collector's last `collect` set
      `ctx.state[cheap_sections_key(name)]` to True.
    - `memoizable`: False when the output depends on more than the texts
      (`ctx.state`, `ctx.now`), so the families of an earlier probe with the
      same texts must never be reused.
    - `default`: part of the collectors a module gets when it lists none.
    """

    name: str
    collect: CollectFunction
    files: tuple[str, ...] = ()
    sections: Mapping[str, str] = field(default_factory=dict)
    cheap_sections: Mapping[str, str] = field(default_factory=dict)
    memoizable: bool = True
    default: bool = True
