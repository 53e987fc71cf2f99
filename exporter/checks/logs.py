"""Log watches: count lines matching named patterns in what was appended since the last probe.

    stacksense_log_matches_total{file,pattern}   matching lines counted by this exporter
    stacksense_log_read_bytes_total{file}        bytes read from the file
    stacksense_log_file_present{file}            0 when the file is missing or unreadable
    stacksense_log_truncated_reads_total{file}   probes that hit max_bytes_per_probe

The exporter keeps, per server and file, the inode and the offset it read up to,
and passes them to the host as two numbers (shell variables set before the script
runs, exporter.remote_shell's prelude); the host sends only the bytes after the
offset, at most max_bytes_per_probe (the rest is read at the next probes):

- same inode, size >= offset: appended data from the offset;
- same inode, size < offset: truncated (copytruncate): from the start;
- another inode (rotated, or deleted and re-created): the rest of the old file if it
  is now FILE.1 (logrotate's default name), then the new file from the start;
- first probe of a file: its end (no history is counted; counters start at 0).

A line cut by the read (no newline yet) is kept by the exporter and completed at
the next probe, so a pattern is never split. The last matching line of every
pattern is kept (truncated to 200 characters, credential-looking words masked) for
`GET /api/v1/servers/<name>`. Counters restart from 0 when the exporter restarts
(Prometheus' increase() handles that). Cost on the host per file and probe: 3 small
processes (stat, tail, awk), only stat when nothing was appended.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import Any

from exporter.checks_config import Checks, LogWatch
from exporter.collectors._common import label_text
from exporter.errors import short_message
from exporter.exposition import Family

HEAD = "@@log "
STATE = "logs.files"  # {file: {"inode", "offset", "partial", "counts": {pattern: n}, ...}}
LAST_MATCH = "logs.last_match"  # {file: {pattern: line}}
MAX_PARTIAL = 64 * 1024


def section_name(index: int) -> str:
    return f"log.{index}"


# COUNT bytes at most, every line prefixed with '|'; a line cut by the limit (or the
# last line, not yet ended by a newline) is followed by "@@log cut". One awk instead of
# head and sed (each process costs the monitored host CPU); it exits at the limit, so
# tail stops.
_TAKE = (
    'awk -v n="$ss_n" \'{ l = length($0) + 1; if (c + l <= n) { print "|" $0; c += l } '
    f'else {{ r = n - c; if (r > 0) {{ print "|" substr($0, 1, r); print "{HEAD}cut" }} '
    "exit } }'"
)


def _read(tag: str, file: str, start: str, count: str) -> str:
    """Print `@@log data TAG START COUNT`, then COUNT bytes of FILE from START, prefixed.

    Nothing new (COUNT 0, a quiet log) costs no process: only the header is printed.
    """
    return (
        f'ss_n=$(({count})); echo "{HEAD}data {tag} $(({start})) $ss_n"; '
        f'if [ "$ss_n" -gt 0 ]; then tail -c +$(({start} + 1)) -- {file} | {_TAKE}; fi'
    )


def snippet(index: int, watch: LogWatch) -> str:
    f = shlex.quote(watch.file)
    rotated = shlex.quote(watch.file + ".1")
    ino, off, cap = f"$ss_li_{index}", f"$ss_lo_{index}", watch.max_bytes_per_probe
    return (
        f"ss_s=$(stat -L -c '%i %s' -- {f}) || ss_s=; "
        f'if [ -z "$ss_s" ]; then echo "{HEAD}missing"; else '
        "set -- $ss_s; ss_i=$1; ss_z=$2; "
        f'echo "{HEAD}stat $ss_i $ss_z"; '
        f'if [ "{off}" -lt 0 ]; then :; '
        f'elif [ "$ss_i" = "{ino}" ] && [ "$ss_z" -ge "{off}" ]; then '
        f"{_read('cur', f, off, f'($ss_z - {off}) < {cap} ? ($ss_z - {off}) : {cap}')}; "
        "else "
        f"ss_r=$(stat -L -c '%i %s' -- {rotated}) || ss_r=; "
        'if [ -n "$ss_r" ]; then set -- $ss_r; '
        f'if [ "$1" = "{ino}" ] && [ "$2" -gt "{off}" ]; then '
        f"{_read('old', rotated, off, f'($2 - {off}) < {cap} ? ($2 - {off}) : {cap}')}; "
        "fi; fi; "
        f"{_read('cur', f, '0', f'$ss_z < {cap} ? $ss_z : {cap}')}; "
        "fi; fi"
    )


def sections(checks: Checks) -> dict[str, str]:
    return {section_name(i): snippet(i, w) for i, w in enumerate(checks.logs)}


def prelude(checks: Checks, state: dict[str, Any]) -> str:
    """`ss_li_0=INODE ss_lo_0=OFFSET ...;`: where each file was read up to (-1: not yet)."""
    files = state.get(STATE, {})
    parts = []
    for i, watch in enumerate(checks.logs):
        kept = files.get(watch.file)
        inode = int(kept["inode"]) if kept and kept.get("inode") is not None else -1
        offset = int(kept["offset"]) if kept and kept.get("inode") is not None else -1
        parts.append(f"ss_li_{i}={inode} ss_lo_{i}={offset}")
    return " ".join(parts) + ";" if parts else ""


Read = tuple[str, int, int, list[str], bool]  # tag, start, count, lines, last line cut


def _chunks(text: str) -> tuple[int | None, int | None, list[Read], bool]:
    """(inode, size, reads, missing) from a log section's text."""
    inode = size = None
    reads: list[Read] = []
    missing = False
    pieces = ("\n" + text).split("\n" + HEAD)
    for piece in pieces[1:]:
        head, _, body = piece.partition("\n")
        fields = head.split()
        if fields[:1] == ["missing"]:
            missing = True
        elif fields[:1] == ["stat"] and len(fields) == 3:
            inode, size = int(fields[1]), int(fields[2])
        elif fields[:1] == ["data"] and len(fields) == 4 and fields[1] in ("old", "cur"):
            lines = [line[1:] for line in body.split("\n") if line.startswith("|")]
            reads.append((fields[1], int(fields[2]), int(fields[3]), lines, False))
        elif fields[:1] == ["cut"] and reads:
            tag, start, count, lines, _ = reads[-1]
            reads[-1] = (tag, start, count, lines, True)
    return inode, size, reads, missing


def collect(sections: Mapping[str, str], checks: Checks, state: dict[str, Any]) -> list[Family]:
    if not checks.logs:
        return []
    files: dict[str, dict[str, Any]] = state.setdefault(STATE, {})
    last: dict[str, dict[str, str]] = state.setdefault(LAST_MATCH, {})
    watched = {w.file for w in checks.logs}
    for gone in [f for f in files if f not in watched]:
        del files[gone]
        last.pop(gone, None)
    matches = Family(
        "stacksense_log_matches_total",
        "counter",
        "Lines matching the pattern appended to the log file, counted since the exporter started.",
    )
    read_bytes = Family(
        "stacksense_log_read_bytes_total",
        "counter",
        "Bytes read from the log file since the exporter started.",
    )
    capped = Family(
        "stacksense_log_truncated_reads_total",
        "counter",
        "Probes that read max_bytes_per_probe and left the rest for later.",
    )
    present = Family(
        "stacksense_log_file_present", "gauge", "Whether the log file exists and is readable."
    )
    for i, watch in enumerate(checks.logs):
        kept = files.setdefault(
            watch.file,
            {"inode": None, "offset": 0, "partial": "", "counts": {}, "bytes": 0, "capped": 0},
        )
        try:
            inode, size, reads, missing = _chunks(sections.get(section_name(i), ""))
        except ValueError:
            inode, size, reads, missing = None, None, [], True
        ok = inode is not None and size is not None and not missing
        if kept["inode"] is None:
            # First sight: start at the end (no history). A file missing at first sight
            # is read from its start when it appears (inode 0 never matches a real one).
            kept.update(inode=inode, offset=size) if ok else kept.update(inode=0, offset=0)
        elif ok:
            _account(watch, kept, last, inode, reads)
        labels = label_text(file=watch.file)
        present.samples.append((labels, 1.0 if ok else 0.0))
        read_bytes.samples.append((labels, float(kept["bytes"])))
        capped.samples.append((labels, float(kept["capped"])))
        for name, _ in watch.patterns:
            matches.samples.append(
                (label_text(file=watch.file, pattern=name), float(kept["counts"].get(name, 0)))
            )
    return [matches, read_bytes, capped, present]


def _account(
    watch: LogWatch,
    kept: dict[str, Any],
    last: dict[str, dict[str, str]],
    inode: int | None,
    reads: list[Read],
) -> None:
    for tag, start, count, lines, cut in reads:
        if tag == "cur" and start == 0 and kept["offset"] and not any(r[0] == "old" for r in reads):
            kept["partial"] = ""  # truncated or replaced: the cut line is gone
        if lines:
            lines = [kept["partial"] + lines[0], *lines[1:]]
            kept["partial"] = ""
        if tag == "old":
            # The rest of the rotated file: nothing more will be appended to it, so its
            # last line counts even without a newline.
            _match(watch, kept, last, lines)
        else:
            if cut and lines:
                # Not ended yet (or cut by the byte limit): completed at the next probe.
                kept["partial"] = lines.pop()[-MAX_PARTIAL:]
            _match(watch, kept, last, lines)
            kept["offset"] = start + count
            kept["inode"] = inode
        kept["bytes"] += count
        if count >= watch.max_bytes_per_probe:
            kept["capped"] += 1


def _match(
    watch: LogWatch, kept: dict[str, Any], last: dict[str, dict[str, str]], lines: list[str]
) -> None:
    counts: dict[str, int] = kept["counts"]
    for name, pattern in watch.patterns:
        hit = None
        for line in lines:
            if line and pattern.search(line):
                counts[name] = counts.get(name, 0) + 1
                hit = line
        if hit is not None:
            last.setdefault(watch.file, {})[name] = short_message(hit)
