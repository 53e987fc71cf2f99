"""Score a ``timestamp,value`` CSV with the streaming detector (NAB contract).

``python -m rules.detect_csv FILE.csv`` (or ``stacksense-rules detect FILE.csv``)
writes ``timestamp,value,anomaly_score`` to stdout: one row per input row, in
the same order, with the timestamp and value fields echoed verbatim and a
score in [0, 1] computed from that row and the rows before it only.

Timestamps may be NAB's ``YYYY-mm-dd HH:MM:SS[.ffffff]``, ISO 8601 (naive
means UTC) or unix seconds. A value that does not parse as a number is
scored as NaN (score 0, state untouched). A malformed file (no
``timestamp``/``value`` header, a short row, an unparseable timestamp) stops
with ``error: FILE:LINE: ...`` on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TextIO

from rules.detector import Detector, DetectorParams

EXIT_BAD_INPUT = 2


class CsvFormatError(ValueError):
    """A malformed input CSV; the message names the file and line."""


def parse_timestamp(text: str) -> float:
    """Parse unix seconds, NAB ``YYYY-mm-dd HH:MM:SS`` or ISO 8601 to unix seconds."""
    s = text.strip()
    try:
        return float(s)
    except ValueError:
        pass
    dt = datetime.fromisoformat(s)  # 3.11 accepts "Z", "T" or " ", fractions, offsets
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def _parse_value(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("nan")


def detect_file(path: str, out: TextIO, params: DetectorParams | None = None) -> int:
    """Score every row of the CSV at ``path`` into ``out``; return the rows written."""
    det = Detector(params)
    update = det.update
    written = 0
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        try:
            header = next(reader)
        except StopIteration:
            raise CsvFormatError(
                f"{path}:1: empty file, expected a 'timestamp,value' header"
            ) from None
        except csv.Error as exc:
            raise CsvFormatError(f"{path}:1: {exc}") from exc
        names = [h.strip().lower() for h in header]
        if "timestamp" not in names or "value" not in names:
            raise CsvFormatError(
                f"{path}:1: header {header!r} lacks 'timestamp' and 'value' columns"
            )
        ti = names.index("timestamp")
        vi = names.index("value")
        width = max(ti, vi) + 1
        out.write("timestamp,value,anomaly_score\n")
        buf: list[str] = []
        try:
            for row in reader:
                if not row:
                    continue
                line = reader.line_num
                if len(row) < width:
                    raise CsvFormatError(
                        f"{path}:{line}: expected {len(header)} fields, got {len(row)}"
                    )
                ts_text = row[ti]
                try:
                    ts = parse_timestamp(ts_text)
                except ValueError:
                    raise CsvFormatError(
                        f"{path}:{line}: unparseable timestamp {ts_text!r}"
                    ) from None
                score = update(ts, _parse_value(row[vi]))
                buf.append(f"{_field(ts_text)},{_field(row[vi])},{score:.8f}\n")
                if len(buf) >= 1024:
                    out.write("".join(buf))
                    written += len(buf)
                    buf.clear()
        except csv.Error as exc:
            raise CsvFormatError(f"{path}:{reader.line_num}: {exc}") from exc
        out.write("".join(buf))
        written += len(buf)
    return written


def _field(text: str) -> str:
    # Echo verbatim, quoting only when CSV requires it.
    if any(c in text for c in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``detect FILE.csv`` -> scored CSV on stdout."""
    ap = argparse.ArgumentParser(
        prog="stacksense-rules detect",
        description="Write timestamp,value,anomaly_score for a timestamp,value CSV.",
    )
    ap.add_argument("file", help="CSV with a 'timestamp,value' header")
    args = ap.parse_args(list(argv) if argv is not None else None)
    try:
        detect_file(args.file, sys.stdout)
    except CsvFormatError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:
        # the reader went away (e.g. `| head`): not the input's fault, stay quiet
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as exc:
        print(f"error: {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0


if __name__ == "__main__":
    sys.exit(main())
