"""The shell sections of a server's checks, in a fixed order (cached per checks object)."""

from __future__ import annotations

from functools import lru_cache

from exporter.checks import commands, hardware, logs, services
from exporter.checks_config import Checks


@lru_cache(maxsize=1024)
def check_sections(
    checks: Checks, host_facts: bool, no_systemd: bool = False
) -> tuple[tuple[str, str], ...]:
    parts: dict[str, str] = {}
    parts.update(services.sections(checks, no_systemd))
    parts.update(commands.sections(checks))
    parts.update(logs.sections(checks))
    if host_facts:
        parts.update(hardware.sections())
    return tuple(parts.items())
