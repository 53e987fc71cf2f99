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

from stacksense_common.config import ConfigError, check_keys

SERVICE_KEYS = {"name", "unit", "process", "cmdline"}
COMMAND_KEYS = {"name", "run", "timeout_seconds", "value", "ok_exit_codes"}
LOG_KEYS = {"file", "patterns", "max_bytes_per_probe"}
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

        return Checks(merge(self.services, own.services, "name"),
                      merge(self.commands, own.commands, "name"),
                      merge(self.logs, own.logs, "file"))


class ChecksError(ConfigError):
    """The shared ConfigError, raised with the key path of the bad value."""


def _list(value: Any, path: str) -> list[Mapping[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ChecksError(f"{path}: expected a list")
    if len(value) > MAX_CHECKS:
        raise ChecksError(f"{path}: at most {MAX_CHECKS} entries")
    for i, item in enumerate(value):
        if not isinstance(item, Mapping):
            raise ChecksError(f"{path}[{i}]: expected a mapping")
    return value


def _keys(raw: Mapping[str, Any], path: str, allowed: set[str]) -> None:
    check_keys(raw, path, allowed)


def _name(value: Any, path: str) -> str:
    if not isinstance(value, str) or not NAME.fullmatch(value):
        raise ChecksError(f"{path}: expected a name of letters, digits, '_', '.', '-' "
                          f"(at most 64), got {value!r}")
    return value


def _regex(value: Any, path: str) -> re.Pattern[str]:
    if not isinstance(value, str) or not value:
        raise ChecksError(f"{path}: expected a regular expression")
    try:
        return re.compile(value)
    except re.error as exc:
        raise ChecksError(f"{path}: invalid regular expression: {exc}") from None


def _unique(names: list[str], path: str, what: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ChecksError(f"{path}: duplicate {what} {name!r}")
        seen.add(name)


def parse_services(value: Any, path: str) -> tuple[ServiceCheck, ...]:
    out: list[ServiceCheck] = []
    for i, raw in enumerate(_list(value, path)):
        where = f"{path}[{i}]"
        _keys(raw, where, SERVICE_KEYS)
        name = _name(raw.get("name"), f"{where}.name")
        unit = raw.get("unit")
        if unit is not None and (not isinstance(unit, str) or not UNIT.fullmatch(unit)):
            raise ChecksError(f"{where}.unit: not a systemd unit name: {unit!r}")
        process = raw.get("process")
        if process is not None and (not isinstance(process, str)
                                    or not PROCESS.fullmatch(process)):
            raise ChecksError(f"{where}.process: expected a process name as in "
                              f"/proc/PID/comm (no spaces or '/', at most 15 bytes), "
                              f"got {process!r}")
        cmdline = _regex(raw["cmdline"], f"{where}.cmdline") if "cmdline" in raw else None
        if unit is None and process is None and cmdline is None:
            raise ChecksError(f"{where}: give unit, process or cmdline (or several)")
        out.append(ServiceCheck(name, unit, process, cmdline))
    _unique([s.name for s in out], path, "service")
    return tuple(out)


def parse_commands(value: Any, path: str) -> tuple[CommandCheck, ...]:
    out: list[CommandCheck] = []
    for i, raw in enumerate(_list(value, path)):
        where = f"{path}[{i}]"
        _keys(raw, where, COMMAND_KEYS)
        name = _name(raw.get("name"), f"{where}.name")
        run = raw.get("run")
        if not isinstance(run, list) or not run or not all(
                isinstance(a, str) and a and "\n" not in a and "\0" not in a for a in run):
            raise ChecksError(f"{where}.run: expected a non-empty list of arguments "
                              "(the program first; no shell: write [sh, -c, '...'] for one)")
        timeout = raw.get("timeout_seconds", CommandCheck.timeout_seconds)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) \
                or not 0 < timeout <= 300:
            raise ChecksError(f"{where}.timeout_seconds: expected a number in (0, 300], "
                              f"got {timeout!r}")
        value_spec = raw.get("value", CommandCheck.value)
        regex = None
        if isinstance(value_spec, Mapping):
            _keys(value_spec, f"{where}.value", {"regex"})
            regex = _regex(value_spec.get("regex"), f"{where}.value.regex")
            if regex.groups < 1:
                raise ChecksError(f"{where}.value.regex: needs a group around the number")
            kind = "regex"
        elif value_spec in ("exit_code", "number"):
            kind = value_spec
        else:
            raise ChecksError(f"{where}.value: expected exit_code, number or {{regex: ...}}, "
                              f"got {value_spec!r}")
        codes = raw.get("ok_exit_codes", list(CommandCheck.ok_exit_codes))
        if not isinstance(codes, list) or not codes or not all(
                isinstance(c, int) and not isinstance(c, bool) and 0 <= c < 256 for c in codes):
            raise ChecksError(f"{where}.ok_exit_codes: expected a list of exit codes 0-255")
        out.append(CommandCheck(name, tuple(run), float(timeout), kind, regex, tuple(codes)))
    _unique([c.name for c in out], path, "command")
    return tuple(out)


def parse_logs(value: Any, path: str) -> tuple[LogWatch, ...]:
    out: list[LogWatch] = []
    for i, raw in enumerate(_list(value, path)):
        where = f"{path}[{i}]"
        _keys(raw, where, LOG_KEYS)
        file = raw.get("file")
        if not isinstance(file, str) or not file.startswith("/") or "\n" in file \
                or "\0" in file:
            raise ChecksError(f"{where}.file: expected an absolute path, got {file!r}")
        patterns = raw.get("patterns")
        if not isinstance(patterns, Mapping) or not patterns:
            raise ChecksError(f"{where}.patterns: expected a mapping of name: regex")
        compiled = tuple((_name(k, f"{where}.patterns.{k}"),
                          _regex(v, f"{where}.patterns.{k}")) for k, v in patterns.items())
        cap = raw.get("max_bytes_per_probe", DEFAULT_LOG_BYTES)
        if isinstance(cap, bool) or not isinstance(cap, int) or not 1024 <= cap <= MAX_LOG_BYTES:
            raise ChecksError(f"{where}.max_bytes_per_probe: expected an integer in "
                              f"[1024, {MAX_LOG_BYTES}], got {cap!r}")
        out.append(LogWatch(file, compiled, cap))
    _unique([w.file for w in out], path, "log file")
    return tuple(out)


def parse_checks(raw: Mapping[str, Any], path: str) -> Checks:
    where = f"{path}." if path else ""
    return Checks(parse_services(raw.get("services"), f"{where}services"),
                  parse_commands(raw.get("commands"), f"{where}commands"),
                  parse_logs(raw.get("logs"), f"{where}logs"))
