"""node_vmstat_* from /proc/vmstat: the fields node_exporter exports by default."""

from __future__ import annotations

import functools
from collections.abc import Mapping

from exporter.collectors import ParseError, ProbeContext
from exporter.collectors._common import guarded, require
from exporter.collectors.base import Collector
from exporter.exposition import Family

NAME = "vmstat"
FILES = ("/proc/vmstat",)


@functools.lru_cache(maxsize=1024)
def wanted(field: str) -> bool:
    """node_exporter's default --collector.vmstat.fields `^(oom_kill|pgpg|pswp|pg.*fault).*`."""
    return field.startswith(("oom_kill", "pgpg", "pswp")) or (
        field.startswith("pg") and "fault" in field[2:]
    )


@guarded("/proc/vmstat")
def parse(text: str) -> dict[str, int]:
    """The default fields' `name value` lines of /proc/vmstat (the others are not converted)."""
    out: dict[str, int] = {}
    for line in text.split("\n"):
        if line[:1] not in ("o", "p") and line.strip():  # every default field starts so
            if " " not in line:
                raise ParseError(f"/proc/vmstat: unexpected line {line[:60]!r}")
            continue
        name, sep, value = line.partition(" ")
        if not sep:
            if line.strip():
                raise ParseError(f"/proc/vmstat: unexpected line {line[:60]!r}")
            continue
        if wanted(name):
            if not name.isascii() or not name.replace("_", "").isalnum():
                raise ParseError(f"/proc/vmstat: bad field name {name[:40]!r}")
            out[name] = int(value)
    return out


def collect(sections: Mapping[str, str], ctx: ProbeContext) -> list[Family]:
    """This probe's metric families, built fresh from its sections."""
    fields = parse(require(sections, "/proc/vmstat", NAME))
    return [
        Family(
            f"node_vmstat_{name}",
            "untyped",
            f"/proc/vmstat information field {name}.",
            [("", value)],
        )
        for name, value in fields.items()
    ]


COLLECTOR = Collector(NAME, collect, files=FILES)
