"""The single round-trip command: every section a probe needs, in one `/bin/sh` run.

Sections are separated by marker lines that cannot occur in /proc files.
The script runs under `/bin/sh -c` with LC_ALL=C; no login shell, so no rc
files (they can cost 100+ ms per poll). Snippets come only from collector
modules (fixed strings), never from the inventory or from user input.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import ModuleType

MARKER = "@@stacksense@@ "


def build_script(collectors: Iterable[ModuleType]) -> str:
    """Join the collectors' sections into one script, each section printed once."""
    sections: dict[str, str] = {}
    for module in collectors:
        for name, snippet in module.SECTIONS.items():
            previous = sections.setdefault(name, snippet)
            if previous != snippet:
                raise ValueError(f"section {name!r} defined twice with different snippets")
    parts = ["LC_ALL=C; export LC_ALL"]
    for name, snippet in sections.items():
        parts.append(f"echo '{MARKER}{name}'; {{ {snippet.strip()} ; }} 2>/dev/null")
    parts.append(f"echo '{MARKER}end'")
    return "\n".join(parts) + "\n"


def split_sections(output: str) -> dict[str, str]:
    """Split the command's output into `{section: text}`.

    A section missing from the output is absent from the result; text before
    the first marker is ignored (e.g. a banner printed by a forced command).
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
    return result


def complete(sections: Mapping[str, str], output: str) -> bool:
    """Whether the output reached the end marker (not cut off mid-way)."""
    return f"{MARKER}end" in output
