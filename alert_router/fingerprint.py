"""Alertmanager's label-set fingerprint: FNV-1a 64 over sorted names and values."""

from __future__ import annotations

from collections.abc import Mapping

_OFFSET = 14695981039346656037
_PRIME = 1099511628211
_MASK = 0xFFFFFFFFFFFFFFFF
_SEPARATOR = 0xFF


def fingerprint(labels: Mapping[str, str]) -> str:
    """The 16-hex-digit fingerprint Alertmanager gives the same label set."""
    h = _OFFSET
    for name in sorted(labels):
        for part in (name, labels[name]):
            for byte in part.encode():
                h = ((h ^ byte) * _PRIME) & _MASK
            h = ((h ^ _SEPARATOR) * _PRIME) & _MASK
    return f"{h:016x}"
