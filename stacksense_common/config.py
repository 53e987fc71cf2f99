"""Strict config loading, driven by dataclasses.

A dataclass IS the schema: its fields are the allowed keys, their defaults are the
defaults (written once, there), their types are checked. Nested dataclasses, lists,
tuples, dicts, Optional, Literal, Path, Secret and durations (`Seconds`) are supported.
Every error is a `ConfigError` whose message starts with the key path
(`servers[3].ssh.port`); an unknown key also lists the allowed ones, so a typo never
silently disables a setting.

    @dataclass(frozen=True)
    class Ssh:
        port: int = 22
        timeout: Seconds = 5.0

    ssh = load(Ssh, {"port": 2222, "timeout": "10s"}, "servers[3].ssh")

A field's YAML key is its name, or `field(metadata={"key": "for"})` for names Python
cannot use. Checks across fields go in `__post_init__`: a ValueError raised there becomes
a ConfigError at the dataclass's path, and `ConfigError("key", "message")` one at that
key below it.
"""

from __future__ import annotations

import dataclasses
import os
import types
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

from stacksense_common import duration
from stacksense_common.secret import Secret

T = TypeVar("T")


class ConfigError(ValueError):
    """Invalid configuration; the message starts with the key path.

    `ConfigError("a.b: message")` and `ConfigError("a.b", "message")` are the same error;
    `path` and `message` hold the two parts when they were given apart.
    """

    def __init__(self, path_or_message: str, message: str | None = None) -> None:
        if message is None:
            path, message = "", path_or_message
        else:
            path = path_or_message
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message


class _DurationMarker:
    """Marks a float field read as a Prometheus duration (see stacksense_common.duration)."""

    def __repr__(self) -> str:
        return "Seconds"


# A float of seconds, written in the config as a Prometheus duration ("30s", "1h30m").
Seconds = Annotated[float, _DurationMarker()]


def join(path: str, key: object) -> str:
    """`path.key`, or just `key` at the top level."""
    return f"{path}.{key}" if path else str(key)


def where(path: str) -> str:
    return path or "<top>"


def check_keys(
    raw: Any,
    path: str,
    allowed: Sequence[str] | set[str] | frozenset[str],
    *,
    required: Sequence[str] = (),
) -> Mapping[str, Any]:
    """`raw` as a mapping with only `allowed` keys (None is empty) and all `required` ones."""
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(where(path), f"expected a mapping, got {_kind(raw)}")
    for key in raw:
        if key not in allowed:
            raise ConfigError(
                join(path, key), f"unknown key (allowed: {', '.join(sorted(allowed))})"
            )
    for key in required:
        if raw.get(key) is None:
            raise ConfigError(join(path, key), "required")
    return raw


def duration_at(raw: Any, path: str) -> float:
    """Seconds in a duration value; a ConfigError naming `path` and the grammar otherwise."""
    try:
        return duration.parse(raw)
    except duration.DurationError as exc:
        raise ConfigError(where(path), str(exc)) from None


def read_yaml(file: str | os.PathLike[str], what: str = "") -> Any:
    """A YAML file's content; unreadable files and bad YAML are ConfigErrors naming the file.

    `what` names the file's role in the "cannot read" error ("cannot read inventory: ...").
    The YAML error shows line, column and problem, never the line's text: a broken line
    is as likely as any to hold a password.
    """
    file = Path(file)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        role = f" {what}" if what else ""
        raise ConfigError(str(file), f"cannot read{role}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(str(file), f"not UTF-8 (invalid byte at offset {exc.start})") from None
    try:
        return yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError) as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(
            str(file), f"invalid YAML{at}: {getattr(exc, 'problem', None) or exc}"
        ) from None


def load(cls: type[T], raw: Any, path: str = "", *, base: Path | None = None) -> T:
    """Build dataclass `cls` from parsed YAML `raw`; ConfigError naming the key path if invalid.

    Relative `Path` values are taken relative to `base` when it is given.
    """
    return _Loader(base)._dataclass(cls, raw, path)


def keys_of(cls: type[Any]) -> list[str]:
    """The YAML keys a dataclass accepts."""
    return [_key(f) for f in dataclasses.fields(cls)]


def _key(f: dataclasses.Field[Any]) -> str:
    return str(f.metadata.get("key", f.name))


def _kind(raw: Any) -> str:
    if raw is None:
        return "null"
    return {
        dict: "a mapping",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "an integer",
        float: "a number",
    }.get(type(raw), type(raw).__name__)


class _Loader:
    def __init__(self, base: Path | None) -> None:
        self.base = base

    def _dataclass(self, cls: type[T], raw: Any, path: str) -> T:
        fields = {
            _key(f): f
            for f in dataclasses.fields(cls)  # type: ignore[arg-type]
            if f.init
        }
        data = check_keys(raw, path, list(fields))
        hints = get_type_hints(cls, include_extras=True)
        kwargs: dict[str, Any] = {}
        for key, f in fields.items():
            value_path = join(path, key)
            if key not in data:
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                    raise ConfigError(value_path, "required")
                continue
            kwargs[f.name] = self._value(hints[f.name], data[key], value_path)
        try:
            return cls(**kwargs)
        except ConfigError as exc:  # a __post_init__ check, its path relative to ours
            raise ConfigError(
                join(path, exc.path) if exc.path else where(path), exc.message
            ) from None
        except ValueError as exc:  # a __post_init__ check across fields
            raise ConfigError(where(path), str(exc)) from None

    def _value(self, tp: Any, raw: Any, path: str) -> Any:
        origin = get_origin(tp)
        if tp is Any:
            return raw
        if origin is Annotated:
            inner, *marks = get_args(tp)
            if any(isinstance(m, _DurationMarker) for m in marks):
                return duration_at(raw, path)
            return self._value(inner, raw, path)
        if origin is Union or origin is types.UnionType:
            args = [a for a in get_args(tp) if a is not type(None)]
            if raw is None and len(args) < len(get_args(tp)):
                return None
            if len(args) != 1:
                raise TypeError(f"{path}: only Optional[X] unions are supported, not {tp}")
            return self._value(args[0], raw, path)
        if origin is Literal:
            choices = get_args(tp)
            if raw not in choices or isinstance(raw, bool) != any(
                isinstance(c, bool) for c in choices
            ):
                raise ConfigError(
                    path, f"expected one of {', '.join(map(str, choices))}, got {raw!r}"
                )
            return raw
        if dataclasses.is_dataclass(tp):
            return self._dataclass(tp, raw, path)  # type: ignore[arg-type]
        if origin in (list, tuple, Sequence) or tp in (list, tuple):
            return self._sequence(tp, origin, raw, path)
        if origin in (dict, Mapping) or tp is dict:
            return self._mapping(tp, raw, path)
        return self._scalar(tp, raw, path)

    def _sequence(self, tp: Any, origin: Any, raw: Any, path: str) -> Any:
        if raw is None:
            raw = []
        if not isinstance(raw, list):
            raise ConfigError(path, f"expected a list, got {_kind(raw)}")
        args = get_args(tp)
        item = args[0] if args else Any
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            raise TypeError(f"{path}: only tuple[X, ...] is supported, not {tp}")
        items = [self._value(item, v, f"{path}[{i}]") for i, v in enumerate(raw)]
        return tuple(items) if origin is tuple or tp is tuple else items

    def _mapping(self, tp: Any, raw: Any, path: str) -> dict[str, Any]:
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            raise ConfigError(path, f"expected a mapping, got {_kind(raw)}")
        args = get_args(tp)
        value_type = args[1] if len(args) == 2 else Any
        out: dict[str, Any] = {}
        for key, value in raw.items():
            if not isinstance(key, str):
                raise ConfigError(join(path, key), f"keys must be strings, got {_kind(key)}")
            out[key] = self._value(value_type, value, join(path, key))
        return out

    def _scalar(self, tp: Any, raw: Any, path: str) -> Any:
        if tp is bool:
            if isinstance(raw, bool):
                return raw
            raise ConfigError(path, f"expected true or false, got {raw!r}")
        if tp is int:
            if isinstance(raw, int) and not isinstance(raw, bool):
                return raw
            raise ConfigError(path, f"expected an integer, got {raw!r}")
        if tp is float:
            if isinstance(raw, int | float) and not isinstance(raw, bool):
                return float(raw)
            raise ConfigError(path, f"expected a number, got {raw!r}")
        if tp is str:
            if isinstance(raw, str):
                return raw
            raise ConfigError(path, f"expected a string, got {raw!r}")
        if tp is Secret:
            if isinstance(raw, str):
                return Secret(raw)
            # Not the value: a mistyped secret is still a secret.
            raise ConfigError(path, f"expected a string, got {_kind(raw)}")
        if tp is Path:
            if not isinstance(raw, str) or not raw:
                raise ConfigError(path, f"expected a file path, got {raw!r}")
            p = Path(os.path.expanduser(raw))
            return p if p.is_absolute() or self.base is None else self.base / p
        raise TypeError(f"{path}: unsupported config field type {tp!r}")
