"""Shared helpers for the collector tests: load a host fixture, run collectors, read samples."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from exporter.collectors import ProbeContext, registry
from exporter.collectors.base import Collector
from exporter.command import split_sections
from exporter.exposition import Family, render

HOSTS = Path(__file__).resolve().parent.parent / "fixtures" / "hosts"
HOST_NAMES = tuple(sorted(p.name for p in HOSTS.iterdir() if (p / "probe.txt").is_file()))


def sections(host: str) -> dict[str, str]:
    """The probe output of a fixture host, split as the exporter splits it."""
    return split_sections((HOSTS / host / "probe.txt").read_text())


def collect_all(
    secs: Mapping[str, str],
    ctx: ProbeContext | None = None,
    collectors: Iterable[Collector] | None = None,
) -> list[Family]:
    """Run every (or the given) collector on the sections."""
    ctx = ctx or ProbeContext(target="test")
    families: list[Family] = []
    for collector in collectors if collectors is not None else registry.COLLECTORS.values():
        families.extend(collector.collect(secs, ctx))
    return families


class Samples:
    """Rendered exposition parsed back with prometheus_client: look samples up by name+labels."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.values: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
        self.by_name: dict[str, list[dict[str, str]]] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                key = (sample.name, frozenset(sample.labels.items()))
                assert key not in self.values, f"duplicate series {key}"
                self.values[key] = sample.value
                self.by_name.setdefault(sample.name, []).append(dict(sample.labels))

    def get(self, metric: str, /, **labels: str) -> float | None:
        return self.values.get((metric, frozenset(labels.items())))

    def __getitem__(self, name: str) -> float:
        value = self.get(name)
        assert value is not None, f"{name} missing"
        return value

    def labels(self, name: str, label: str) -> set[str]:
        return {sample[label] for sample in self.by_name.get(name, [])}

    def names(self) -> set[str]:
        return set(self.by_name)


def host_samples(host: str, ctx: ProbeContext | None = None) -> Samples:
    """Every collector's output for a fixture host, rendered and parsed back."""
    return Samples(render(collect_all(sections(host), ctx)))
