"""The probe renderer: exposition text Prometheus' own parser reads back exactly."""

from __future__ import annotations

import math

from prometheus_client.parser import text_string_to_metric_families

from exporter.metrics import Family, counter, format_value, gauge, render


def test_values_round_trip_through_the_parser() -> None:
    fam = gauge("x_ratio", "help")
    values = [0.0, 1.0, 0.25, 1e20, -3.0, 12345678901.0, math.inf, -math.inf, 7, True]
    for i, v in enumerate(values):
        fam.add(v, i=str(i))
    parsed = next(text_string_to_metric_families(render([fam])))
    got = [s.value for s in sorted(parsed.samples, key=lambda s: int(s.labels["i"]))]
    assert got == [float(v) for v in values]
    assert format_value(float("nan")) == "NaN"


def test_labels_and_help_are_escaped() -> None:
    fam = gauge("x", 'a "help"\nline\\').add(1, path='C:\\dir "q"\nx')
    text = render([fam])
    parsed = next(text_string_to_metric_families(text))
    assert parsed.samples[0].labels["path"] == 'C:\\dir "q"\nx'
    assert "\n# TYPE x gauge\n" in text


def test_same_name_from_two_collectors_merges_without_mutating() -> None:
    a = counter("node_x_total", "first").add(1, cpu="0")
    b = counter("node_x_total", "second").add(2, cpu="1")
    text = render([a, b])
    assert text.count("# TYPE node_x_total counter") == 1
    assert 'node_x_total{cpu="1"} 2' in text
    assert len(a.samples) == 1 and len(b.samples) == 1  # inputs untouched
    assert render([Family("empty", "gauge", "no samples")]) == ""
