"""The single round-trip command: every source a probe needs, in one `/bin/sh` run.

Files are read by ONE `grep -Hs '' FILE...` (each line prefixed with its path),
because every extra process costs the monitored host ~0.5 ms of CPU; a `cat`
per file would blow the 3 ms per-probe budget. Commands that must run (df,
guarded by `timeout` against hung mounts) get their own marked section.
Sections are separated by marker lines that cannot occur in /proc files.
The script runs under `/bin/sh -c` with LC_ALL=C; no login shell, so no rc
files (they can cost 100+ ms per poll). Snippets and paths come only from
collector modules (fixed strings), never from the inventory or user input.
"""

from __future__ import annotations

from collections.abc import Iterable
from types import ModuleType

MARKER = "@@stacksense@@ "
FILES_SECTION = "files"


def build_script(collectors: Iterable[ModuleType]) -> str:
    """Join the collectors' files and sections into one script, each printed once."""
    files: dict[str, None] = {}
    sections: dict[str, str] = {}
    for module in collectors:
        for path in getattr(module, "FILES", ()):
            files[path] = None
        for name, snippet in getattr(module, "SECTIONS", {}).items():
            previous = sections.setdefault(name, snippet)
            if previous != snippet:
                raise ValueError(f"section {name!r} defined twice with different snippets")
    parts = ["LC_ALL=C; export LC_ALL"]
    if files:
        parts.append(f"echo '{MARKER}{FILES_SECTION}'; grep -Hs '' {' '.join(files)}")
    for name, snippet in sections.items():
        parts.append(f"echo '{MARKER}{name}'; {{ {snippet.strip()} ; }} 2>/dev/null")
    parts.append(f"echo '{MARKER}end'")
    return "\n".join(parts) + "\n"


def split_sections(output: str) -> dict[str, str]:
    """Split the command's output into `{section or file path: text}`.

    Files read through grep appear under their path (`/proc/stat`); a file
    that was missing or empty is absent. Text before the first marker is
    ignored (e.g. a banner printed by a forced command).
    """
    result: dict[str, str] = {}
    current: str | None = None
    lines: list[str] = []
    for line in output.split("\n"):
        if line.startswith(MARKER):
            if current is not None:
                result[current] = "\n".join(lines)
            current = line[len(MARKER):].strip()
            lines = []
        elif current is not None:
            lines.append(line)
    if current is not None and current != "end":
        result[current] = "\n".join(lines)
    result.pop("end", None)
    grepped = result.pop(FILES_SECTION, None)
    if grepped:
        result.update(split_grep(grepped))
    return result


def split_grep(text: str) -> dict[str, str]:
    """Split `grep -H` output (`path:line`) into `{path: text}` (paths have no ':')."""
    per_file: dict[str, list[str]] = {}
    for line in text.split("\n"):
        path, sep, rest = line.partition(":")
        if not sep:
            continue
        bucket = per_file.get(path)
        if bucket is None:
            bucket = per_file[path] = []
        bucket.append(rest)
    return {path: "\n".join(lines) + "\n" for path, lines in per_file.items()}


def completed(output: str) -> bool:
    """Whether the output reached the end marker (not cut off mid-way)."""
    return f"{MARKER}end" in output
