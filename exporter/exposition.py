"""Metric families and a fast Prometheus text renderer for probe output.

Why not prometheus_client for probes: its per-sample text rendering, times the
several hundred samples of even a small host, would take much of the exporter's CPU
budget per probe (docs/decisions/exporter-performance.md). A probe's families are built fresh every
time (as client_python's custom collectors do) and rendered here directly into
the text exposition format 0.0.4. The exporter's own /metrics still uses
prometheus_client.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def escape_label_value(value: str) -> str:
    """Escape a label value for the text format (backslash, quote, newline)."""
    if "\\" in value or '"' in value or "\n" in value:
        value = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return value


def escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(value: float) -> str:
    """Format a sample value the way Prometheus parses it back."""
    if value.__class__ is bool:
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if value != value:
        return "NaN"
    if value == math.inf:
        return "+Inf"
    if value == -math.inf:
        return "-Inf"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


@dataclass(slots=True)
class Family:
    """One metric family: name (with `_total` for counters), type, help and samples.

    Samples are kept as (pre-rendered label string, value) so that rendering
    is one string join; `add` does the escaping once per sample.
    """

    name: str
    type: str  # "gauge", "counter" or "untyped"
    help: str
    samples: list[tuple[str, float]] = field(default_factory=list)
    # Set by the collectors' memo on families it reuses unchanged probe after probe:
    # such a family must not change any more, so render keeps its text.
    frozen: bool = field(default=False, compare=False, repr=False)
    text: str | None = field(default=None, compare=False, repr=False)

    def add(self, value: float, **labels: str) -> Family:
        """Add a sample with the given labels (in the given order)."""
        if labels:
            rendered = ",".join(f'{k}="{escape_label_value(v)}"' for k, v in labels.items())
            self.samples.append(("{" + rendered + "}", value))
        else:
            self.samples.append(("", value))
        return self

    def add_labels(self, value: float, labels: Iterable[tuple[str, str]]) -> Family:
        """Add a sample whose label names are only known at run time."""
        rendered = ",".join(f'{k}="{escape_label_value(v)}"' for k, v in labels)
        self.samples.append(("{" + rendered + "}" if rendered else "", value))
        return self


def gauge(name: str, help_text: str, value: float | None = None, **labels: str) -> Family:
    """A gauge family, optionally with one sample already in it."""
    fam = Family(name, "gauge", help_text)
    if value is not None:
        fam.add(value, **labels)
    return fam


def counter(name: str, help_text: str, value: float | None = None, **labels: str) -> Family:
    """A counter family; `name` must end in `_total`."""
    fam = Family(name, "counter", help_text)
    if value is not None:
        fam.add(value, **labels)
    return fam


# `# HELP`/`# TYPE` text per metric name: the same ~270 names come back on every
# probe of every target, and building the header was a third of render's time.
# Bounded so that label-less garbage cannot grow it without end.
_HEADERS: dict[str, tuple[str, str, str]] = {}
_HEADERS_MAX = 20000


def _header(fam: Family) -> str:
    cached = _HEADERS.get(fam.name)
    if cached is not None and cached[0] == fam.help and cached[1] == fam.type:
        return cached[2]
    text = f"# HELP {fam.name} {escape_help(fam.help)}\n# TYPE {fam.name} {fam.type}\n"
    if len(_HEADERS) < _HEADERS_MAX:
        _HEADERS[fam.name] = (fam.help, fam.type, text)
    return text


def render(families: Iterable[Family]) -> str:
    """Render families to the text exposition format.

    Families with the same name are merged (first HELP/TYPE wins) so that two
    collectors may contribute samples to one name without a duplicate TYPE
    line, which Prometheus would reject. Merging copies only on a repeat.
    The per-family loop is inlined here: a probe renders ~200 families, most
    with one sample, so a function call per family was a fifth of the time.
    """
    merged: dict[str, Family] = {}
    copied: set[str] = set()
    for fam in families:
        seen = merged.setdefault(fam.name, fam)
        if seen is not fam:
            if fam.name not in copied:  # never mutate the caller's family
                seen = merged[fam.name] = Family(
                    seen.name, seen.type, seen.help, list(seen.samples)
                )
                copied.add(fam.name)
            seen.samples.extend(fam.samples)
    out: list[str] = []
    append = out.append
    headers_get = _HEADERS.get
    fmt = format_value
    for fam in merged.values():
        samples = fam.samples
        if not samples:
            continue
        if fam.frozen:  # never merged (a merge renders a copy): its text cannot change
            if fam.text is None:
                chunk: list[str] = []
                _render_family(fam, chunk)
                fam.text = "".join(chunk)
            append(fam.text)
            continue
        name = fam.name
        cached = headers_get(name)
        if cached is not None and cached[0] == fam.help and cached[1] == fam.type:
            append(cached[2])
        else:
            append(_header(fam))
        for labels, value in samples:
            cls = value.__class__
            if cls is float and value.is_integer() and -1e15 < value < 1e15:
                append(f"{name}{labels} {int(value)}\n")
            elif cls is int:
                append(f"{name}{labels} {value}\n")
            else:
                append(f"{name}{labels} {fmt(value)}\n")
    return "".join(out)


def _render_family(fam: Family, out: list[str]) -> None:
    """One family's text (the frozen families' kept text; `render` inlines the same)."""
    out.append(_header(fam))
    name = fam.name
    for labels, value in fam.samples:
        out.append(f"{name}{labels} {format_value(value)}\n")
