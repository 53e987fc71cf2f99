"""Custom commands: named in the inventory, run on the host without a shell, under a timeout.

    stacksense_command_success{command}            1 when it ran, exited with an ok code
                                                   and its value could be read
    stacksense_command_value{command}              the number (output, regex group or exit
                                                   code), absent when it failed
    stacksense_command_exit_code{command}          its exit status (124: timed out)
    stacksense_command_duration_seconds{command}   measured on the host (10 ms steps)
    stacksense_command_last_error_info{command,reason} 1 while it fails: why, one line

Each runs as `timeout -k 1 T ARGV...` (GNU coreutils or busybox `timeout`) with
stdin from /dev/null and stderr dropped; the argument list is the inventory's, each
argument `shlex.quote`d, so no shell ever parses it. Its output and then its exit
status go through one awk that prefixes every output line with '|' (no forged
markers) and keeps at most MAX_COMMAND_OUTPUT bytes of them; the status line, last,
passes as it is. The duration comes from /proc/uptime read by the shell's `read`
builtin. Processes per command on the host: the pipeline's subshell, timeout, the
command, awk.

A command that hangs is killed at its timeout (exit 124, reason "timed out after
Ts"); one that prints garbage is a failure with the garbage's first characters in
the reason. Neither fails the probe, and the inventory refuses commands whose
timeouts add up to the module's command_timeout_seconds or more, so the probe's
deadline always holds.
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Mapping
from typing import Any

from exporter.checks import unprefix
from exporter.checks_config import MAX_COMMAND_OUTPUT, Checks, CommandCheck
from exporter.collectors._common import label_text
from exporter.errors import short_message
from exporter.exposition import Family, gauge

RC_LINE = "@@stacksense-rc@@ "
# timeout(1)'s own statuses, and the shell's for a missing or unrunnable program.
EXIT_REASONS = {
    124: "timed out after {t:g}s",
    137: "killed after {t:g}s (ignored TERM)",
    125: "timeout(1) itself failed",
    126: "program is not executable",
    127: "program not found (or no timeout(1) on the host)",
}


def section_name(command: CommandCheck) -> str:
    return f"cmd.{command.name}"


# Prefixes every output line with '|' and keeps at most MAX_COMMAND_OUTPUT bytes of them;
# the last line, the exit status written after the command, passes unprefixed. One awk
# instead of head and sed: every process started costs the monitored host CPU.
# Past the cap it says so and exits: the command then dies of SIGPIPE instead of
# printing on (and costing CPU) until its timeout.
_FILTER = (
    'awk -v cap={cap} \'NR > 1 {{ c += length(p) + 1; if (c <= cap) print "|" p; '
    'else {{ print "{rc}cut"; cut = 1; exit }} }} {{ p = $0 }} '
    'END {{ if (cut) exit; if (p ~ /^{rc}[0-9]+$/) print p; else if (NR) print "|" p }}\''
)


def snippet(command: CommandCheck) -> str:
    argv = " ".join(shlex.quote(a) for a in command.argv)
    return (
        "read ss_t0 ss_x </proc/uptime; "
        f"{{ timeout -k 1 {command.timeout_seconds:g} {argv} </dev/null 2>/dev/null; "
        f"printf '\\n{RC_LINE}%s\\n' $?; }} | "
        + _FILTER.format(cap=MAX_COMMAND_OUTPUT, rc=RC_LINE)
        + "; read ss_t1 ss_x </proc/uptime; "
        f'printf \'{RC_LINE}time %s %s\\n\' "$ss_t0" "$ss_t1"'
    )


def sections(checks: Checks) -> dict[str, str]:
    return {section_name(c): snippet(c) for c in checks.commands}


def evaluate(
    command: CommandCheck, text: str | None
) -> tuple[float | None, int | None, float | None, str | None]:
    """(value, exit code, duration, failure reason) from the command's section text."""
    if text is None:
        return None, None, None, "no output from the host (section missing)"
    lines = text.split("\n")
    tails = [line[len(RC_LINE) :].split() for line in lines if line.startswith(RC_LINE)]
    duration: float | None = None
    timing = [t for t in tails if t[:1] == ["time"]]
    try:
        duration = max(0.0, float(timing[-1][2]) - float(timing[-1][1]))
    except (IndexError, ValueError):
        pass
    status = [t for t in tails if t[:1] not in (["time"], ["cut"])]
    if any(t[:1] == ["cut"] for t in tails):
        return None, None, duration, f"output larger than {MAX_COMMAND_OUTPUT} bytes"
    if not status:
        return None, None, duration, "no exit status from the host"
    try:
        rc = int(status[-1][0])
    except (IndexError, ValueError):
        return None, None, duration, "unreadable exit status"
    body = "\n".join(line for line in lines if line.startswith("|"))
    output = unprefix(body).strip()
    if rc in EXIT_REASONS and rc not in command.ok_exit_codes:
        return None, rc, duration, EXIT_REASONS[rc].format(t=command.timeout_seconds)
    if command.value == "exit_code":
        value: float | None = float(rc)
    else:
        if rc not in command.ok_exit_codes:
            return None, rc, duration, f"exited with {rc}"
        value, why = _value(command, output)
        if value is None:
            return None, rc, duration, why
    if rc not in command.ok_exit_codes:
        return value, rc, duration, f"exited with {rc}"
    return value, rc, duration, None


def _value(command: CommandCheck, output: str) -> tuple[float | None, str]:
    if command.value == "regex":
        assert command.regex is not None
        match = command.regex.search(output)
        if match is None:
            return None, f"output does not match the value regex: {output[:60]!r}"
        candidate = match.group(1) or ""
    else:
        candidate = output.split("\n", 1)[0].strip()
    try:
        value = float(candidate)
    except ValueError:
        return None, f"output is not a number: {candidate[:60]!r}"
    if not math.isfinite(value):
        return None, f"output is not a finite number: {candidate[:60]!r}"
    return value, ""


def collect(sections: Mapping[str, str], checks: Checks, state: dict[str, Any]) -> list[Family]:
    if not checks.commands:
        return []
    ok_fam = gauge(
        "stacksense_command_success",
        "Whether the custom command ran, exited with an ok code and gave a value.",
    )
    value_fam = gauge(
        "stacksense_command_value",
        "The custom command's value (output number, regex group or exit code).",
    )
    rc_fam = gauge(
        "stacksense_command_exit_code", "The custom command's exit status (124: timed out)."
    )
    dur_fam = gauge(
        "stacksense_command_duration_seconds",
        "How long the custom command ran on the host (10 ms resolution).",
    )
    err_fam = gauge(
        "stacksense_command_last_error_info", "1 while the custom command fails, with the reason."
    )
    for command in checks.commands:
        labels = label_text(command=command.name)
        value, rc, duration, reason = evaluate(command, sections.get(section_name(command)))
        ok_fam.samples.append((labels, 0.0 if reason else 1.0))
        if value is not None:
            value_fam.samples.append((labels, value))
        if rc is not None:
            rc_fam.samples.append((labels, float(rc)))
        if duration is not None:
            dur_fam.samples.append((labels, duration))
        if reason:
            # The label keeps the reason's stable part: output excerpts would make a new
            # series at every probe of a command that prints something different each time.
            err_fam.samples.append(
                (label_text(command=command.name, reason=short_message(reason.split(":")[0])), 1.0)
            )
    return [f for f in (ok_fam, value_fam, rc_fam, dur_fam, err_fam) if f.samples]
