"""Reading one receiver config section strictly: unknown keys, types and secrets, by key path."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from alert_router.notify.base import ReceiverConfigError
from stacksense_common import duration
from stacksense_common.config import ConfigError, check_keys
from stacksense_common.secret import MARK, Secret

# One secret type and one duration grammar for every service (stacksense_common).
SECRET_MARK = MARK

__all__ = [
    "SECRET_MARK",
    "Secret",
    "Section",
    "global_secret",
    "parse_duration",
    "read_secret_file",
    "redact",
]


def parse_duration(text: object, *, path: str) -> float:
    """Seconds from a positive Prometheus duration such as "10s", "1m30s" or "500ms"."""
    try:
        seconds = duration.parse(text, path)
    except duration.DurationError as exc:
        raise ReceiverConfigError(str(exc)) from None
    if seconds <= 0:
        raise ReceiverConfigError(f"{path}: must be longer than 0, got {text!r}")
    return seconds


class Section:
    """One mapping of a receiver config, read key by key with errors naming the key path."""

    def __init__(self, raw: Any, path: str, allowed: set[str]) -> None:
        try:
            self.raw: Mapping[str, Any] = check_keys(raw, path, allowed)
        except ConfigError as exc:  # the kit's check, raised as the receivers' error type
            raise ReceiverConfigError(str(exc)) from None
        self.path = path

    def key_path(self, key: str) -> str:
        return f"{self.path}.{key}"

    def has(self, key: str) -> bool:
        return self.raw.get(key) is not None

    def string(self, key: str, default: str | None = None, *, required: bool = False) -> str | None:
        value = self.raw.get(key)
        if value is None:
            if required and default is None:
                raise ReceiverConfigError(f"{self.key_path(key)}: required")
            return default
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ReceiverConfigError(
                f"{self.key_path(key)}: must be a string, got {type(value).__name__}"
            )
        return str(value)

    def boolean(self, key: str, default: bool) -> bool:
        value = self.raw.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise ReceiverConfigError(f"{self.key_path(key)}: must be true or false")
        return value

    def integer(self, key: str, default: int, *, minimum: int = 0) -> int:
        value = self.raw.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ReceiverConfigError(f"{self.key_path(key)}: must be an integer >= {minimum}")
        return value

    def duration(self, key: str, default: float) -> float:
        value = self.raw.get(key)
        if value is None:
            return default
        return parse_duration(value, path=self.key_path(key))

    def choice(self, key: str, choices: tuple[str, ...], default: str) -> str:
        value = self.string(key, default)
        if value not in choices:
            raise ReceiverConfigError(
                f"{self.key_path(key)}: must be one of {', '.join(choices)}, got {value!r}"
            )
        return value

    def string_map(self, key: str) -> dict[str, str]:
        value = self.raw.get(key)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise ReceiverConfigError(f"{self.key_path(key)}: must be a mapping of strings")
        result: dict[str, str] = {}
        for name, item in value.items():
            if (
                not isinstance(name, str)
                or isinstance(item, bool)
                or not isinstance(item, str | int | float)
            ):
                raise ReceiverConfigError(f"{self.key_path(key)}.{name}: must be a string")
            result[name] = str(item)
        return result

    def section(self, key: str, allowed: set[str]) -> Section:
        return Section(self.raw.get(key), self.key_path(key), allowed)

    def file_path(self, key: str) -> str | None:
        value = self.string(key)
        if value is not None and not Path(value).is_file():
            raise ReceiverConfigError(f"{self.key_path(key)}: file not found: {value}")
        return value

    def secret(
        self,
        key: str,
        *,
        file_key: str | None = None,
        fallback: Secret | None = None,
        required: bool = False,
    ) -> Secret | None:
        """A secret given inline (`key`) or in a file (`file_key`), else `fallback`."""
        inline = self.raw.get(key)
        from_file = self.raw.get(file_key) if file_key else None
        if inline is not None and from_file is not None:
            raise ReceiverConfigError(
                f"{self.key_path(key)}: give either {key} or {file_key}, not both"
            )
        if inline is not None:
            if not isinstance(inline, str) or not inline:
                raise ReceiverConfigError(f"{self.key_path(key)}: must be a non-empty string")
            return Secret(inline)
        if from_file is not None and file_key is not None:
            return Secret(read_secret_file(from_file, path=self.key_path(file_key)))
        if fallback is not None:
            return fallback
        if required:
            wanted = f"{key} or {file_key}" if file_key else key
            raise ReceiverConfigError(f"{self.key_path(key)}: required ({wanted})")
        return None


def read_secret_file(file: Any, *, path: str) -> str:
    """The content of a secret file without its trailing newline; errors never show content."""
    if not isinstance(file, str) or not file:
        raise ReceiverConfigError(f"{path}: must be a file path")
    try:
        value = Path(file).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ReceiverConfigError(f"{path}: cannot read {file}: {exc.strerror}") from None
    if not value:
        raise ReceiverConfigError(f"{path}: {file} is empty")
    return value


def global_secret(
    global_config: Mapping[str, Any], key: str, file_key: str | None = None
) -> Secret | None:
    """A secret default from the `global:` section (inline or file)."""
    section = Section(dict(global_config), "global", set(global_config))
    return section.secret(key, file_key=file_key)


def redact(value: Any) -> Any:
    """`value` with every Secret replaced by "<secret>", recursively."""
    if isinstance(value, Secret):
        return SECRET_MARK
    if isinstance(value, Mapping):
        return {k: redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value
