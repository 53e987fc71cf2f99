"""The single round-trip command: every source a probe needs, in one `/bin/sh` run.

Files are read by ONE `head -v -n 1000000000 FILE...` (the whole of every
file, each after a `==> FILE <==` header), because every extra process costs
the monitored host CPU time; a `cat` per file would blow the per-probe budget
(figures: docs/benchmarks-exporter.md). head rather than `grep -Hs ''`: grep
costs the host more (pcre, per-line matching) and prefixes every line with
its path, which would have to be split line by line; head's headers are
split with a few C-level calls. Not `tail -n +1`: GNU tail stops at the first
file whose read fails (sysfs `duplex`/`speed` of a virtual NIC give EINVAL);
head goes on. GNU and busybox head both print the same headers. Commands that
must run (df, guarded by `timeout` against hung mounts) get their own marked
section. Sections are separated by marker lines that cannot occur in /proc
files. The script runs in a `/bin/sh` with LC_ALL=C (a function of the shell
kept on the connection, see exporter.remote_shell; no rc file runs per probe:
a slow one would slow every poll). Snippets and paths come only from
collectors (fixed strings), never from the inventory or user input.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from exporter.collectors.base import Collector

MARKER = "@@stacksense@@ "
FILES_SECTION = "files"
READ_FILES = "head -v -n 1000000000"
HEADER = "==> "


def build_script(
    collectors: Iterable[Collector],
    cheap: Collection[str] = (),
    *,
    one_write: bool = False,
    extra: Iterable[tuple[str, str]] = (),
) -> str:
    """Join the collectors' files and sections into one script, each printed once.

    Collectors named in `cheap` contribute their cheap_sections in place of
    the sections of the same name. With `one_write`, the shell collects the
    whole output in a variable and prints it at the end: one write, so sshd
    sends it in one or two packets instead of one per stdio flush of head
    (its buffer fills many times, and it flushes before each error message),
    which saves the exporter packet handling on every probe; the command
    substitution costs the host one fork. The output is the same byte for
    byte (the substitution strips the trailing newline, printf puts it back).
    `extra` adds the inventory's checks (exporter.checks) as sections after the
    collectors' own.
    """
    files: dict[str, None] = {}
    sections: dict[str, str] = {}
    for collector in collectors:
        for path in collector.files:
            files[path] = None
        own = dict(collector.sections)
        if collector.name in cheap:
            own.update(collector.cheap_sections)
        for name, snippet in own.items():
            previous = sections.setdefault(name, snippet)
            if previous != snippet:
                raise ValueError(f"section {name!r} defined twice with different snippets")
    parts = ["LC_ALL=C; export LC_ALL"]
    if files:
        # 2>/dev/null: missing files and globs that match nothing are simply absent.
        parts.append(f"echo '{MARKER}{FILES_SECTION}'; {READ_FILES} {' '.join(files)} 2>/dev/null")
    for name, snippet in (*sections.items(), *extra):
        parts.append(f"echo '{MARKER}{name}'; {{ {snippet.strip()} ; }} 2>/dev/null")
    parts.append(f"echo '{MARKER}end'")
    if one_write:
        body = "\n".join(parts[1:])
        parts = [parts[0], f"ss_o=$(\n{body}\n)", "printf '%s\\n' \"$ss_o\"; unset ss_o"]
    return "\n".join(parts) + "\n"


def split_sections(output: str) -> dict[str, str]:
    """Split the command's output into `{section or file path: text}`.

    Files appear under their path (`/proc/stat`), each text ending in a
    newline; a file that was missing or empty is absent. Text before the
    first marker is ignored (e.g. a banner printed by a forced command).
    Only C-level splits: no Python work per line.
    """
    result: dict[str, str] = {}
    chunks = ("\n" + output).split("\n" + MARKER)
    for chunk in chunks[1:]:
        name, _, body = chunk.partition("\n")
        result[name.strip()] = body
    result.pop("end", None)
    files = result.pop(FILES_SECTION, None)
    if files:
        result.update(split_headed(files) if files.startswith(HEADER) else split_grep(files))
    return result


def split_headed(text: str) -> dict[str, str]:
    """Split `head -v` output (`==> path <==` before each file) into `{path: text}`."""
    out: dict[str, str] = {}
    for part in ("\n" + text).split("\n" + HEADER)[1:]:
        path, sep, body = part.partition(" <==\n")
        if not sep:  # an empty last file: its header ends the text
            continue
        if body:
            out[path] = body if body[-1] == "\n" else body + "\n"
    return out


def split_grep(text: str) -> dict[str, str]:
    """Split `grep -H` output (`path:line`) into `{path: text}` (older captured fixtures)."""
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
