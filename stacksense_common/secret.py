"""The one secret type: passwords, tokens, webhook URLs with credentials in them.

The redaction rule is one and simple: nothing that turns a value into text (repr, str,
format/f-strings, %-logging, json.dumps, pickling) ever shows the secret. `reveal()` is
the only way to the value, so every place that sends a secret is greppable.
"""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import Any, NoReturn

MARK = "<secret>"


class Secret:
    """A string that never shows itself; `reveal()` is its one accessor."""

    __slots__ = ("_value",)

    def __init__(self, value: str | Secret) -> None:
        if isinstance(value, Secret):
            value = value.reveal()
        if not isinstance(value, str):
            # Not the value in the message: a wrongly typed secret is still a secret.
            raise TypeError(f"Secret wants a str, got {type(value).__name__}")
        self._value = value

    @classmethod
    def from_file(cls, path: str | Path) -> Secret:
        """The file's content, stripped of surrounding whitespace (the trailing newline)."""
        return cls(Path(path).read_text(encoding="utf-8").strip())

    def reveal(self) -> str:
        """The value, for the one place that must send or compare it."""
        return self._value

    def __repr__(self) -> str:
        return MARK

    def __str__(self) -> str:
        return MARK

    def __format__(self, spec: str) -> str:
        # object.__format__ would reject a non-empty spec; the mark is formatted instead.
        return format(MARK, spec)

    def __eq__(self, other: object) -> bool:
        # Constant time, so a comparison does not leak how much of a guess was right.
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __reduce__(self) -> NoReturn:
        # Pickles end up in caches and crash dumps: a secret is never serialised.
        raise TypeError("a Secret cannot be pickled")

    def __copy__(self) -> Secret:
        return self  # immutable: copies (of a config holding it) share it

    def __deepcopy__(self, memo: dict[int, Any]) -> Secret:
        return self


def reveal(value: Secret | str | None) -> str | None:
    """The plain value of an optional secret (a str passes through)."""
    if value is None:
        return None
    return value.reveal() if isinstance(value, Secret) else value
