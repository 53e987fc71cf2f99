"""The name → collector module table and the default set."""

from __future__ import annotations

from types import ModuleType

from exporter.collectors import loadavg

COLLECTORS: dict[str, ModuleType] = {m.NAME: m for m in (loadavg,)}

DEFAULT_COLLECTORS: tuple[str, ...] = tuple(COLLECTORS)
