"""node_os_info and node_os_version from /etc/os-release (or /usr/lib/os-release)."""

from __future__ import annotations

import functools
from collections.abc import Mapping

from exporter.collectors import ProbeContext
from exporter.collectors.base import Collector
from exporter.exposition import Family, gauge

NAME = "os"
FILES = ("/etc/os-release", "/usr/lib/os-release")

# node_exporter's label set for node_os_info (alphabetical, as it renders them).
INFO_FIELDS = (
    ("build_id", "BUILD_ID"), ("id", "ID"), ("id_like", "ID_LIKE"), ("image_id", "IMAGE_ID"),
    ("image_version", "IMAGE_VERSION"), ("name", "NAME"), ("pretty_name", "PRETTY_NAME"),
    ("variant", "VARIANT"), ("variant_id", "VARIANT_ID"), ("version", "VERSION"),
    ("version_codename", "VERSION_CODENAME"), ("version_id", "VERSION_ID"),
)  # fmt: skip
VERSION_FIELDS = (("id", "ID"), ("id_like", "ID_LIKE"), ("name", "NAME"))


def unquote(value: str) -> str:
    """An os-release value without its shell quotes (`"Debian 12"` -> `Debian 12`)."""
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1]
        if '"' in value or "\\" in value:
            value = value.replace('\\"', '"').replace("\\$", "$").replace("\\\\", "\\")
    return value


@functools.lru_cache(maxsize=64)
def parse(text: str) -> dict[str, str]:
    """os-release(5) `KEY=value` lines, quotes removed, bad lines skipped (cached)."""
    out: dict[str, str] = {}
    for line in text.split("\n"):
        key, sep, value = line.strip().partition("=")
        if not sep or not key or key.startswith("#"):
            continue
        out[key] = unquote(value)
    return out


def version_number(version_id: str) -> float | None:
    """VERSION_ID as node_exporter reads it: `22.04` -> 22.04, `7.9.2009` -> 7.9."""
    parts = version_id.split(".")
    candidate = ".".join(parts[:2])
    try:
        return float(candidate)
    except ValueError:
        try:
            return float(parts[0])
        except ValueError:
            return None


def collect(sections: Mapping[str, str], ctx: ProbeContext) -> list[Family]:
    """This probe's metric families, built fresh from its sections."""
    text = sections.get("/etc/os-release") or sections.get("/usr/lib/os-release")
    if not text:
        return []  # not an error: some minimal systems ship no os-release
    fields = parse(text)
    info = gauge("node_os_info", "A metric with a constant '1' value labeled by os-release fields.")
    info.add_labels(1, [(label, fields.get(key, "")) for label, key in INFO_FIELDS])
    families = [info]
    number = version_number(fields.get("VERSION_ID", ""))
    if number is not None:
        version = gauge(
            "node_os_version", "Metric containing the major.minor part of the OS version."
        )
        labels = [(label, fields.get(key, "")) for label, key in VERSION_FIELDS]
        families.append(version.add_labels(number, labels))
    return families


COLLECTOR = Collector(NAME, collect, files=FILES)
