"""Backtest over a CSV (the Prometheus variant is in test_engine_history.py)."""

from __future__ import annotations

import pytest

from rules.backtest import parse_time
from rules.cli import main
from rules.validate import ConfigError

START = 1_700_000_000


def write_csv(path, values, step=15):
    path.write_text(
        "timestamp,value\n" + "".join(f"{START + i * step},{v}\n" for i, v in enumerate(values))
    )


def test_csv_backtest_reports_conditions_and_anomalies(tmp_path, capsys):
    csv = tmp_path / "cpu.csv"
    write_csv(csv, [0.3] * 300 + [0.95] * 40 + [0.3] * 40)
    assert main(["backtest", "--csv", str(csv), "--metric", "stacksense_cpu_usage_ratio"]) == 0
    out = capsys.readouterr().out.splitlines()
    firing = [line for line in out if " FIRING " in line]
    assert len(firing) == 1 and "HighCpuUsage" in firing[0]
    shift = START + 300 * 15
    assert firing[0].startswith(parse_iso(shift + 300)) and "value=0.95" in firing[0]
    assert "series=cpu" in firing[0]
    assert any(" RESOLVED " in line for line in out)
    anomaly = [line for line in out if " ANOMALY " in line]
    assert anomaly and anomaly[0].startswith(parse_iso(shift))
    assert out[-1] == "# 1 condition alert(s) fired, 1 anomaly(ies) started"


def parse_iso(ts):
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def test_csv_without_metric_runs_only_the_detector(tmp_path, capsys):
    csv = tmp_path / "x.csv"
    write_csv(csv, [0.3] * 300 + [0.95] * 40)
    assert main(["backtest", "--csv", str(csv)]) == 0
    out = capsys.readouterr().out
    assert " FIRING " not in out and " ANOMALY " in out


def test_bad_csv_names_file_and_line(tmp_path, capsys):
    csv = tmp_path / "bad.csv"
    csv.write_text("timestamp,value\n1700000000,1\nyesterday,2\n")
    assert main(["backtest", "--csv", str(csv)]) == 2
    assert "bad.csv:3: cannot parse timestamp" in capsys.readouterr().err
    csv.write_text("time,val\n")
    assert main(["backtest", "--csv", str(csv)]) == 2
    assert "bad.csv:1: expected a 'timestamp,value' header" in capsys.readouterr().err


def test_parse_time():
    assert parse_time("now", 1000.0) == 1000.0
    assert parse_time("now-1h", 10_000.0) == 6400.0
    assert parse_time("-90s", 1000.0) == 910.0
    assert parse_time("2023-11-14T22:13:20Z", 0) == START
    with pytest.raises(ConfigError, match="cannot parse 'soon'"):
        parse_time("soon", 0)
