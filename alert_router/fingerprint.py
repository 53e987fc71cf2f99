"""Alertmanager's label-set fingerprint: FNV-1a 64 over sorted names and values."""

from __future__ import annotations

from collections.abc import Mapping

_OFFSET = 14695981039346656037
_PRIME = 1099511628211
_MASK = 0xFFFFFFFFFFFFFFFF


def _bytes(text: object) -> bytes:
    # Total on purpose: the dispatcher fingerprints every stored row, and one row that
    # raised here (a lone surrogate accepted before input was checked) stalled it for good.
    # surrogatepass keeps such a value's fingerprint deterministic and distinct; valid
    # UTF-8 text encodes exactly as before.
    return str(text).encode("utf-8", "surrogatepass")


def _data(labels: Mapping[str, str]) -> bytes:
    try:
        # Validated labels (every accepted alert): plain strings, plain UTF-8.
        return b"".join(
            b"%s\xff%s\xff" % (name.encode(), labels[name].encode()) for name in sorted(labels)
        )
    except (UnicodeEncodeError, TypeError, AttributeError):
        return b"".join(
            b"%s\xff%s\xff" % (_bytes(name), _bytes(labels[name]))
            for name in sorted(labels, key=str)
        )


def fingerprint(labels: Mapping[str, str]) -> str:
    """The 16-hex-digit fingerprint Alertmanager gives the same label set (never raises)."""
    data = _data(labels)
    h = _OFFSET
    # Four bytes per step, masked once: XOR with a byte touches only the low bits, so
    # reducing modulo 2**64 every fourth multiplication gives the same result.
    it = iter(data)
    for a, b, c, d in zip(it, it, it, it, strict=False):  # the last 0-3 bytes: below
        h = ((((((h ^ a) * _PRIME) ^ b) * _PRIME ^ c) * _PRIME ^ d) * _PRIME) & _MASK
    for byte in data[len(data) - len(data) % 4 :]:
        h = ((h ^ byte) * _PRIME) & _MASK
    return f"{h:016x}"
