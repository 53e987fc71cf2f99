"""Reuse a collector's families when every text it reads equals the previous probe's.

Many sources never change between probes of a host (uname, os-release, NIC
addresses and speeds, CPU frequency limits, sensor names, sysctl limits); a
string comparison is C-speed, parsing them again is not. Collectors are pure
functions of their sections, so equal texts give equal families; a collector
whose output also depends on the previous probe (`memoizable=False`, e.g.
cpu's usage ratio) is never reused.

Memory stays small: a collector's texts and families are kept only once two
probes in a row read the same texts (until then only a hash is kept), and a
collector whose texts changed on VOLATILE_AFTER probes (meminfo, netstat...)
is no longer tracked for that target.
"""

from __future__ import annotations

from collections.abc import Mapping
from fnmatch import fnmatchcase
from typing import Any

from exporter.collectors.base import Collector
from exporter.exposition import Family

STATE_KEY = "_memo"
VOLATILE_AFTER = 2
# Which section keys each collector may read, per distinct set of keys (a "host
# shape"): computed once per shape, then one dict lookup per probe.
_PLANS: dict[tuple[str, ...], dict[str, tuple[str, ...]]] = {}
_PLANS_MAX = 4096


def sources(collector: Collector, keys: tuple[str, ...]) -> tuple[str, ...]:
    """The section keys among `keys` that `collector` may read (its files, globs, sections)."""
    patterns = [*collector.files, *collector.sections]
    exact = {p for p in patterns if not any(c in p for c in "*?[")}
    globs = [p for p in patterns if p not in exact]
    return tuple(k for k in keys if k in exact or any(fnmatchcase(k, g) for g in globs))


class _Entry:
    __slots__ = ("sources", "digest", "texts", "families", "misses")

    def __init__(self) -> None:
        self.sources: tuple[str, ...] | None = None
        self.digest = 0
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
        self._plan: dict[str, tuple[str, ...]] | None = None
        self._keys: tuple[str, ...] = ()
        self._pending: dict[str, tuple[tuple[str, ...], tuple[str | None, ...], int]] = {}

    def _sources(self, collector: Collector) -> tuple[str, ...]:
        plan = self._plan
        if plan is None:
            keys = tuple(self._sections)
            plan = _PLANS.get(keys)
            if plan is None:
                if len(_PLANS) >= _PLANS_MAX:
                    _PLANS.clear()
                plan = _PLANS[keys] = {}
            self._plan = plan
            self._keys = keys
        found = plan.get(collector.name)
        if found is None:
            found = plan[collector.name] = sources(collector, self._keys)
        return found

    def get(self, collector: Collector) -> list[Family] | None:
        """The families of the previous probe if `collector`'s texts are unchanged, else None."""
        if not collector.memoizable:
            return None
        entry = self._entries.get(collector.name)
        if entry is not None and entry.misses >= VOLATILE_AFTER:
            return None
        found = self._sources(collector)
        texts = tuple(map(self._sections.get, found))
        if (
            entry is not None
            and entry.texts is not None
            and entry.sources == found
            and entry.texts == texts
        ):
            entry.misses = 0
            return entry.families
        self._pending[collector.name] = (found, texts, hash(texts))
        return None

    def put(self, collector: Collector, families: list[Family]) -> None:
        """Remember what `collector` built, once its texts were the same twice in a row."""
        pending = self._pending.pop(collector.name, None)
        if pending is None:
            return
        found, texts, digest = pending
        entry = self._entries.get(collector.name)
        if entry is None:
            entry = self._entries[collector.name] = _Entry()
        elif entry.sources == found and entry.digest == digest and entry.texts is None:
            entry.texts, entry.families = texts, families  # stable: keep it from now on
            for family in families:
                family.frozen = True  # reused as is from now on: render keeps its text
        else:
            entry.misses += 1
            entry.texts = entry.families = None
        entry.sources, entry.digest = found, digest
        if entry.misses >= VOLATILE_AFTER:
            entry.sources = None

    def forget(self, collector: Collector) -> None:
        """Drop what `collector` remembered (it failed: parse again next probe)."""
        self._pending.pop(collector.name, None)
        self._entries.pop(collector.name, None)
