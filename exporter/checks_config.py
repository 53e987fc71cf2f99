"""Service checks, custom commands and log watches: their inventory sections, validated.

They may be given per module (every server of the module) and per server (added to
its module's; a server's entry with the same name replaces the module's). Every
value that reaches the remote script is checked here against a narrow alphabet or
quoted with `shlex.quote` where it is built (exporter.checks_script); commands are
argument lists from this file only, never from a request.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from stacksense_common.config import ConfigError, load

NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
# systemd unit names: letters, digits, ":-_.\@" (systemd.unit(5)); no spaces, no quotes.
UNIT = re.compile(r"[A-Za-z0-9:_.\\@-]{1,255}")
PROCESS = re.compile(r"[^\s/]{1,15}")  # a comm name: at most 15 bytes, as the kernel keeps it
MAX_COMMAND_OUTPUT = 4096
MAX_LOG_BYTES = 64 * 1024 * 1024
DEFAULT_LOG_BYTES = 256 * 1024
MAX_CHECKS = 64


@dataclass(frozen=True)
class ServiceCheck:
    name: str
    unit: str | None = None
    process: str | None = None
    cmdline: re.Pattern[str] | None = None


@dataclass(frozen=True)
class CommandCheck:
    name: str
    argv: tuple[str, ...]
    timeout_seconds: float = 5.0
    value: str = "exit_code"  # exit_code, number or regex
    regex: re.Pattern[str] | None = None
    ok_exit_codes: tuple[int, ...] = (0,)


@dataclass(frozen=True)
class LogWatch:
    file: str
    patterns: tuple[tuple[str, re.Pattern[str]], ...]
    max_bytes_per_probe: int = DEFAULT_LOG_BYTES


@dataclass(frozen=True)
class Checks:
    services: tuple[ServiceCheck, ...] = ()
    commands: tuple[CommandCheck, ...] = ()
    logs: tuple[LogWatch, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.services or self.commands or self.logs)

    def merged(self, own: Checks) -> Checks:
        """The module's checks with a server's own added (same name: the server's wins)."""
        if not own:
            return self
        if not self:
            return own

        def merge(base: tuple[Any, ...], extra: tuple[Any, ...], key: str) -> tuple[Any, ...]:
            names = {getattr(x, key) for x in extra}
            return (*(x for x in base if getattr(x, key) not in names), *extra)

        return Checks(
            merge(self.services, own.services, "name"),
            merge(self.commands, own.commands, "name"),
            merge(self.logs, own.logs, "file"),
        )


class ChecksError(ConfigError):
    """The shared ConfigError, raised with the key path of the bad value (relative to an
    entry when raised in a section's __post_init__: the loader puts the entry's path first)."""


def _list(value: Any, path: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ChecksError(f"{path}: expected a list")
    if len(value) > MAX_CHECKS:
        raise ChecksError(f"{path}: at most {MAX_CHECKS} entries")
    return value


def _name(key: str, value: str) -> None:
    if not NAME.fullmatch(value):
        raise ChecksError(
            key, f"expected a name of letters, digits, '_', '.', '-' (at most 64), got {value!r}"
        )


def _regex(key: str, value: Any) -> re.Pattern[str]:
    if not isinstance(value, str) or not value:
        raise ChecksError(key, "expected a regular expression")
    try:
        return re.compile(value)
    except re.error as exc:
        raise ChecksError(key, f"invalid regular expression: {exc}") from None


def _unique(names: list[str], path: str, what: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ChecksError(f"{path}: duplicate {what} {name!r}")
        seen.add(name)


# The entries as written in the inventory, read by the shared loader: fields are the
# allowed keys, defaults live here, __post_init__ checks what reaches the remote script.


@dataclass(frozen=True)
class ServiceSection:
    """One entry of `services:`."""

    name: str
    unit: str | None = None
    process: str | None = None
    cmdline: str | None = None

    def __post_init__(self) -> None:
        _name("name", self.name)
        if self.unit is not None and not UNIT.fullmatch(self.unit):
            raise ChecksError("unit", f"not a systemd unit name: {self.unit!r}")
        if self.process is not None and not PROCESS.fullmatch(self.process):
            raise ChecksError(
                "process",
                f"expected a process name as in /proc/PID/comm "
                f"(no spaces or '/', at most 15 bytes), got {self.process!r}",
            )
        if self.cmdline is not None:
            _regex("cmdline", self.cmdline)
        if self.unit is None and self.process is None and self.cmdline is None:
            raise ChecksError("", "give unit, process or cmdline (or several)")


@dataclass(frozen=True)
class CommandSection:
    """One entry of `commands:`."""

    name: str
    # An argument list, the program first; checked below with a message on the shell.
    run: Any = None
    timeout_seconds: float = 5.0
    value: Any = "exit_code"  # exit_code, number or {regex: ...}
    ok_exit_codes: tuple[int, ...] = (0,)

    def __post_init__(self) -> None:
        _name("name", self.name)
        if (
            not isinstance(self.run, list)
            or not self.run
            or not all(
                isinstance(a, str) and a and "\n" not in a and "\0" not in a for a in self.run
            )
        ):
            raise ChecksError(
                "run",
                "expected a non-empty list of arguments "
                "(the program first; no shell: write [sh, -c, '...'] for one)",
            )
        if not 0 < self.timeout_seconds <= 300:
            raise ChecksError(
                "timeout_seconds", f"expected a number in (0, 300], got {self.timeout_seconds:g}"
            )
        if not isinstance(self.value, Mapping) and self.value not in ("exit_code", "number"):
            raise ChecksError(
                "value", f"expected exit_code, number or {{regex: ...}}, got {self.value!r}"
            )
        if not self.ok_exit_codes or not all(0 <= c < 256 for c in self.ok_exit_codes):
            raise ChecksError("ok_exit_codes", "expected a list of exit codes 0-255")


@dataclass(frozen=True)
class ValueRegex:
    """`value: {regex: ...}`: the command's value is the regex's first group."""

    regex: str

    def __post_init__(self) -> None:
        if _regex("regex", self.regex).groups < 1:
            raise ChecksError("regex", "needs a group around the number")


@dataclass(frozen=True)
class LogSection:
    """One entry of `logs:`."""

    file: str
    patterns: dict[str, str]  # name: regex
    max_bytes_per_probe: int = DEFAULT_LOG_BYTES

    def __post_init__(self) -> None:
        if not self.file.startswith("/") or "\n" in self.file or "\0" in self.file:
            raise ChecksError("file", f"expected an absolute path, got {self.file!r}")
        if not self.patterns:
            raise ChecksError("patterns", "expected a mapping of name: regex")
        for name, regex in self.patterns.items():
            _name(f"patterns.{name}", name)
            _regex(f"patterns.{name}", regex)
        if not 1024 <= self.max_bytes_per_probe <= MAX_LOG_BYTES:
            raise ChecksError(
                "max_bytes_per_probe",
                f"expected an integer in [1024, {MAX_LOG_BYTES}], got {self.max_bytes_per_probe!r}",
            )


def parse_services(value: Any, path: str) -> tuple[ServiceCheck, ...]:
    out: list[ServiceCheck] = []
    for i, raw in enumerate(_list(value, path)):
        s = load(ServiceSection, raw, f"{path}[{i}]")
        cmdline = re.compile(s.cmdline) if s.cmdline is not None else None
        out.append(ServiceCheck(s.name, s.unit, s.process, cmdline))
    _unique([s.name for s in out], path, "service")
    return tuple(out)


def parse_commands(value: Any, path: str) -> tuple[CommandCheck, ...]:
    out: list[CommandCheck] = []
    for i, raw in enumerate(_list(value, path)):
        where = f"{path}[{i}]"
        c = load(CommandSection, raw, where)
        regex = None
        kind = c.value
        if isinstance(c.value, Mapping):
            regex = re.compile(load(ValueRegex, c.value, f"{where}.value").regex)
            kind = "regex"
        out.append(
            CommandCheck(c.name, tuple(c.run), c.timeout_seconds, kind, regex, c.ok_exit_codes)
        )
    _unique([c.name for c in out], path, "command")
    return tuple(out)


def parse_logs(value: Any, path: str) -> tuple[LogWatch, ...]:
    out: list[LogWatch] = []
    for i, raw in enumerate(_list(value, path)):
        w = load(LogSection, raw, f"{path}[{i}]")
        compiled = tuple((name, re.compile(regex)) for name, regex in w.patterns.items())
        out.append(LogWatch(w.file, compiled, w.max_bytes_per_probe))
    _unique([w.file for w in out], path, "log file")
    return tuple(out)


def parse_checks(raw: Mapping[str, Any], path: str) -> Checks:
    where = f"{path}." if path else ""
    return Checks(
        parse_services(raw.get("services"), f"{where}services"),
        parse_commands(raw.get("commands"), f"{where}commands"),
        parse_logs(raw.get("logs"), f"{where}logs"),
    )
