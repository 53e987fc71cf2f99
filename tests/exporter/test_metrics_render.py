"""The probe renderer: exposition text Prometheus' own parser reads back exactly."""

from __future__ import annotations

import math

from prometheus_client.parser import text_string_to_metric_families

from exporter.exposition import Family, counter, format_value, gauge, render


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


def test_frozen_families_keep_their_text_unless_merged() -> None:
    def build() -> Family:
        return gauge("node_static", "s").add(1, dev="a").add(2.5, dev="b").add(3, dev="c")

    plain = render([build()])
    frozen = build()
    frozen.frozen = True
    assert render([frozen]) == plain and frozen.text == plain
    assert render([frozen]) == plain  # from the kept text
    other = gauge("node_static", "s").add(4, dev="d")
    merged = render([frozen, other])
    assert 'node_static{dev="d"} 4' in merged and merged.count("# TYPE") == 1
    assert frozen.text == plain and len(frozen.samples) == 3  # merging copied, never mutated


def test_ints_floats_and_bools_render_as_the_parser_reads_them() -> None:
    fam = gauge("x", "h")
    for i, v in enumerate([7, 2**62, True, False, 1.5, 3.0, -0.0, 1e15, 1e16]):
        fam.add(v, i=str(i))
    text = render([fam])
    parsed = next(text_string_to_metric_families(text))
    assert [s.value for s in parsed.samples] == [7, 2**62, 1, 0, 1.5, 3, 0, 1e15, 1e16]
    assert 'x{i="2"} 1\n' in text and 'x{i="0"} 7\n' in text
