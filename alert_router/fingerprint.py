"""Alertmanager's label-set fingerprint: FNV-1a 64 over sorted names and values."""

from __future__ import annotations

from collections.abc import Mapping

_OFFSET = 14695981039346656037
_PRIME = 1099511628211
_MASK = 0xFFFFFFFFFFFFFFFF


def fingerprint(labels: Mapping[str, str]) -> str:
    """The 16-hex-digit fingerprint Alertmanager gives the same label set."""
    data = b"".join(b"%s\xff%s\xff" % (name.encode(), labels[name].encode())
                    for name in sorted(labels))
    h = _OFFSET
    for byte in data:
        h = ((h ^ byte) * _PRIME) & _MASK
    return f"{h:016x}"
