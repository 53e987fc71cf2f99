"""The CSV face of the detector: NAB output contract and input errors."""

import io
import math
import os

import pytest

from rules.detect_csv import CsvFormatError, detect_file, main, parse_timestamp
from rules.detector import Detector, DetectorParams


def write(tmp_path, text, name="in.csv"):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def series_csv(n=600):
    lines = ["timestamp,value"]
    for i in range(n):
        lines.append(f"2014-04-01 {i // 60 % 24:02d}:{i % 60:02d}:00,{50 + 10 * math.sin(i / 20)}")
    return "\n".join(lines) + "\n"


def test_contract_one_row_per_input_same_order_verbatim(tmp_path):
    text = series_csv()
    path = write(tmp_path, text)
    out = io.StringIO()
    assert detect_file(path, out) == 600
    rows = out.getvalue().splitlines()
    assert rows[0] == "timestamp,value,anomaly_score"
    src = text.splitlines()[1:]
    assert len(rows) == 601
    for got, want in zip(rows[1:], src, strict=True):
        ts, val, score = got.split(",")
        assert f"{ts},{val}" == want
        assert 0.0 <= float(score) <= 1.0


def test_scores_equal_streaming_detector(tmp_path):
    path = write(
        tmp_path,
        "timestamp,value\n"
        + "".join(f"{1_700_000_000 + 60 * i},{(i % 17) * 1.5}\n" for i in range(400))
        + "1700030000,999\n",
    )
    out = io.StringIO()
    detect_file(path, out)
    det = Detector()
    want = [det.update(1_700_000_000 + 60 * i, (i % 17) * 1.5) for i in range(400)]
    want.append(det.update(1700030000, 999))
    got = [float(r.split(",")[2]) for r in out.getvalue().splitlines()[1:]]
    assert got == pytest.approx(want, abs=1e-8)
    assert got[-1] > 0.75


@pytest.mark.parametrize(
    "text,expected",
    [
        ("2014-04-01 00:00:00", 1396310400.0),
        ("2014-04-01 00:00:00.000000", 1396310400.0),
        ("2014-04-01T00:00:00Z", 1396310400.0),
        ("2014-04-01T02:00:00+02:00", 1396310400.0),
        ("1396310400", 1396310400.0),
        ("1396310400.5", 1396310400.5),
    ],
)
def test_timestamp_formats(text, expected):
    assert parse_timestamp(text) == expected


def test_unparseable_value_is_nan_and_scored_zero(tmp_path):
    path = write(tmp_path, "timestamp,value\n1,1\n2,oops\n3,\n4,2\n")
    out = io.StringIO()
    assert detect_file(path, out) == 4
    rows = out.getvalue().splitlines()[1:]
    assert rows[1].startswith("2,oops,") and float(rows[1].split(",")[2]) == 0.0
    assert rows[2].startswith("3,,")


def test_extra_columns_and_column_order(tmp_path):
    path = write(tmp_path, "value,timestamp,label\n1.5,10,a\n2.5,20,b\n")
    out = io.StringIO()
    detect_file(path, out)
    assert out.getvalue().splitlines()[1].startswith("10,1.5,")


@pytest.mark.parametrize(
    "text,where",
    [
        ("", ":1:"),
        ("time,val\n1,2\n", ":1:"),
        ("timestamp,value\n1,2\n2\n", ":3:"),
        ("timestamp,value\n1,2\nyesterday,3\n", ":3:"),
    ],
)
def test_malformed_csv_names_file_and_line(tmp_path, text, where):
    path = write(tmp_path, text)
    with pytest.raises(CsvFormatError) as exc:
        detect_file(path, io.StringIO())
    assert path + where in str(exc.value)


def test_main_writes_stdout_and_exit_codes(tmp_path, capsys):
    good = write(tmp_path, "timestamp,value\n1,2\n2,3\n")
    assert main([good]) == 0
    assert capsys.readouterr().out.startswith("timestamp,value,anomaly_score\n1,2,")
    bad = write(tmp_path, "timestamp,value\n1,2\nnot-a-time,3\n", "bad.csv")
    assert main([bad]) == 2
    err = capsys.readouterr().err
    assert "bad.csv:3" in err and "timestamp" in err
    assert main([str(tmp_path / "missing.csv")]) == 2


NAB_DATA = os.path.join(
    os.path.dirname(__file__), "..", "..", "..", "shared", "datasets", "nab", "data"
)


@pytest.mark.skipif(not os.path.isdir(NAB_DATA), reason="shared NAB data not present")
def test_tuning_loop_scores_what_the_csv_face_writes():
    # bench/nab_tune.py must measure the detector exactly as the NAB runner sees it
    from bench import nab_tune

    rel = "realAdExchange/exchange-3_cpc_results.csv"
    (series,) = nab_tune.load_series(only=[rel])
    out = io.StringIO()
    detect_file(os.path.join(NAB_DATA, rel), out)
    written = [float(r.split(",")[2]) for r in out.getvalue().splitlines()[1:]]
    tuned = nab_tune.score_series(series, DetectorParams())
    assert written == pytest.approx(tuned, abs=1e-8)
    res = nab_tune.evaluate([series], DetectorParams())
    assert res["standard"]["windows"] == 3
    assert res["standard"]["score"] > 0.0  # it finds these windows: not the null detector


@pytest.mark.skipif(not os.path.isdir(NAB_DATA), reason="shared NAB data not present")
def test_tuning_loop_flags_list_the_false_alarms_and_missed_windows_it_scores():
    from bench import nab_tune

    corpus = nab_tune.load_series(
        only=[
            "realAdExchange/exchange-4_cpm_results.csv",
            "realAdExchange/exchange-2_cpm_results.csv",
        ]
    )
    scores = nab_tune.run(corpus, DetectorParams())
    std = nab_tune.evaluate(corpus, DetectorParams(), all_scores=scores)["standard"]
    lines = nab_tune.flags(corpus, scores, std["threshold"])
    fp_rows = sum(
        len(line.split(" FP ")[1].split(" | ")[0].replace("-", "").split()) for line in lines
    )
    missed = sum(line.split(" | missed ")[1].count("(max") for line in lines)
    assert fp_rows == std["fp"] > 0
    assert missed == std["windows"] - std["windows_detected"] > 0
