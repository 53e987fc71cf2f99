"""Reuse a collector's families when every text it reads equals the previous probe's.

Many sources never change between probes of a host (uname, os-release, NIC
addresses and speeds, CPU frequency limits, sensor names, sysctl limits); a
string comparison is C-speed, parsing them again is not. Collectors are pure
functions of their sections, so equal texts give equal families; a collector
whose output also depends on the previous probe (`MEMOIZABLE = False`, e.g.
cpu's usage ratio) is never reused. A collector whose texts changed on
VOLATILE_AFTER probes in a row (meminfo, netstat...) stops being remembered
for that target, so the memo keeps no copy of large, ever-changing texts.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from fnmatch import fnmatchcase
from types import ModuleType
from typing import Any

from exporter.metrics import Family

STATE_KEY = "_memo"
VOLATILE_AFTER = 2


@functools.lru_cache(maxsize=16384)  # (collector, host shape): a few per host at most
def _sources(module: ModuleType, keys: tuple[str, ...]) -> tuple[str, ...]:
    """The section keys of this probe that `module` may read (its FILES, globs, SECTIONS)."""
    patterns = [*getattr(module, "FILES", ()), *getattr(module, "SECTIONS", {})]
    exact = {p for p in patterns if not any(c in p for c in "*?[")}
    globs = [p for p in patterns if p not in exact]
    return tuple(k for k in keys if k in exact or any(fnmatchcase(k, g) for g in globs))


class _Entry:
    __slots__ = ("sources", "texts", "families", "misses")

    def __init__(self) -> None:
        self.sources: tuple[str, ...] | None = None
        self.texts: tuple[str | None, ...] | None = None
        self.families: list[Family] | None = None
        self.misses = 0


class Memo:
    """One target's remembered families, kept in its probe state between probes."""

    def __init__(self, state: dict[str, Any], sections: Mapping[str, str]) -> None:
        entries = state.get(STATE_KEY)
        if entries is None:
            entries = state[STATE_KEY] = {}
        self._entries: dict[str, _Entry] = entries
        self._sections = sections
        self._keys = tuple(sections)
        self._pending: dict[str, tuple[tuple[str, ...], tuple[str | None, ...]]] = {}

    def get(self, module: ModuleType) -> list[Family] | None:
        """The families of the previous probe if `module`'s texts are unchanged, else None."""
        if not getattr(module, "MEMOIZABLE", True):
            return None
        entry = self._entries.get(module.NAME)
        if entry is not None and entry.misses >= VOLATILE_AFTER:
            return None
        sources = _sources(module, self._keys)
        texts = tuple(map(self._sections.get, sources))
        if entry is not None and entry.sources == sources and entry.texts == texts:
            entry.misses = 0
            return entry.families
        self._pending[module.NAME] = (sources, texts)
        return None

    def put(self, module: ModuleType, families: list[Family]) -> None:
        """Remember what `module` built from the texts `get` just compared."""
        pending = self._pending.pop(module.NAME, None)
        if pending is None:
            return
        entry = self._entries.get(module.NAME)
        if entry is None:
            entry = self._entries[module.NAME] = _Entry()
        elif entry.texts is not None:
            entry.misses += 1  # it was remembered, and the texts changed
        if entry.misses >= VOLATILE_AFTER:
            entry.sources = entry.texts = entry.families = None
            return
        entry.sources, entry.texts = pending
        entry.families = families

    def forget(self, module: ModuleType) -> None:
        """Drop what `module` remembered (it failed: retry the parse next probe)."""
        self._pending.pop(module.NAME, None)
        self._entries.pop(module.NAME, None)
