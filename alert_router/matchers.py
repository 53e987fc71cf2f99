"""Label matchers as Alertmanager writes them: `a="v"`, `a!="v"`, `a=~"re"`, `a!~"re"`."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import re2  # type: ignore[import-untyped]  # google-re2 ships no type hints

from alert_router.errors import ConfigError

# Alertmanager's regex engine is Go's RE2: linear time in the input, no backreferences or
# lookaround. google-re2 is the same engine and syntax, so no matcher a client or config
# writes can make a match expensive, and what Alertmanager rejects is rejected here too.
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # a bad regex is the caller's 400, not a line on stderr
_RE2_OPTIONS.max_mem = 8 << 20  # bounds the compiled program of a huge pattern
MAX_REGEX_BYTES = 4096

LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
_MATCHER = re.compile(
    r'^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*("(?:[^"\\]|\\.)*"|[^"\s,{}]*)\s*$'
)


@dataclass(frozen=True)
class Matcher:
    """One label matcher; regexes are anchored like Prometheus' (full match)."""

    name: str
    value: str
    is_regex: bool = False
    is_equal: bool = True
    _compiled: Any = field(default=None, compare=False, repr=False)

    @classmethod
    def create(
        cls, name: str, value: str, *, is_regex: bool = False, is_equal: bool = True
    ) -> Matcher:
        """A matcher, compiling the regex; ValueError names a bad name or regex."""
        if not LABEL_NAME.match(name):
            raise ValueError(f"invalid label name {name!r}")
        compiled = None
        if is_regex:
            compiled = compile_regex(name, value)
        return cls(name, value, is_regex, is_equal, compiled)

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether `labels` satisfy this matcher (a missing label is the empty string)."""
        actual = labels.get(self.name, "")
        if self._compiled is not None:
            try:
                hit = self._compiled.fullmatch(actual) is not None
            except UnicodeEncodeError:  # a lone surrogate stored before input was checked
                hit = self._compiled.fullmatch(printable(actual)) is not None
        else:
            hit = actual == self.value
        return hit == self.is_equal

    @property
    def operator(self) -> str:
        """The operator as written in matcher strings."""
        return {(False, True): "=", (False, False): "!=", (True, True): "=~", (True, False): "!~"}[
            (self.is_regex, self.is_equal)
        ]

    def __str__(self) -> str:
        return f"{self.name}{self.operator}{json.dumps(self.value)}"

    def to_api(self) -> dict[str, object]:
        """The v2 API form (name, value, isRegex, isEqual)."""
        return {
            "name": self.name,
            "value": self.value,
            "isRegex": self.is_regex,
            "isEqual": self.is_equal,
        }


def printable(text: str) -> str:
    """`text` with any lone surrogate replaced by U+FFFD (encodable as UTF-8)."""
    return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def compile_regex(name: str, value: str) -> Any:
    """An RE2 pattern anchored like Alertmanager's (`^(?:value)$`); ValueError says why not."""
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise ValueError(f"invalid regex for {name}: contains a lone surrogate") from None
    if size > MAX_REGEX_BYTES:
        raise ValueError(f"invalid regex for {name}: longer than {MAX_REGEX_BYTES} bytes")
    try:
        return re2.compile(f"^(?:{value})$", options=_RE2_OPTIONS)
    except re2.error as exc:
        reason = (
            exc.args[0].decode("utf-8", "replace")
            if exc.args and isinstance(exc.args[0], bytes)
            else str(exc)
        )
        raise ValueError(f"invalid regex {value!r} for {name}: {reason}") from None


def parse_matcher(text: str) -> Matcher:
    """Parse one matcher string such as `severity=~"critical|warning"`."""
    match = _MATCHER.match(text) if isinstance(text, str) else None
    if not match:
        raise ValueError(f'invalid matcher {text!r}: want name="value" (or !=, =~, !~)')
    name, op, raw = match.groups()
    value = json.loads(raw) if raw.startswith('"') else raw
    return Matcher.create(name, value, is_regex="~" in op, is_equal=op in ("=", "=~"))


def parse_matchers(text: str) -> list[Matcher]:
    """Parse `{a="1", b=~"x"}` or `a="1",b=~"x"` into matchers (as amtool and the API accept)."""
    body = text.strip()
    if body.startswith("{") and body.endswith("}"):
        body = body[1:-1]
    parts: list[str] = []
    current = ""
    in_quotes = False
    escaped = False
    for char in body:
        if escaped:
            current += char
            escaped = False
            continue
        if char == "\\":
            escaped = True
            current += char
            continue
        if char == '"':
            in_quotes = not in_quotes
        if char == "," and not in_quotes:
            parts.append(current)
            current = ""
        else:
            current += char
    if current.strip():
        parts.append(current)
    return [parse_matcher(p) for p in parts if p.strip()]


def matches_all(matchers: list[Matcher], labels: Mapping[str, str]) -> bool:
    """Whether every matcher matches `labels`."""
    return all(m.matches(labels) for m in matchers)


def matchers_from_config(raw: Mapping[str, Any], prefix: str, path: str) -> list[Matcher]:
    """`<prefix>matchers` strings plus legacy `<prefix>match` / `<prefix>match_re` maps.

    Errors name the key path (`route.routes[1].matchers[0]`); routes use prefix "",
    inhibition rules "source_" and "target_".
    """
    out: list[Matcher] = []
    items = raw.get(f"{prefix}matchers", [])
    if not isinstance(items, list):
        raise ConfigError(f"{path}.{prefix}matchers", "must be a list of matcher strings")
    for i, text in enumerate(items):
        try:
            out.append(parse_matcher(text))
        except ValueError as exc:
            raise ConfigError(f"{path}.{prefix}matchers[{i}]", str(exc)) from None
    for suffix, is_regex in (("match", False), ("match_re", True)):
        key = f"{prefix}{suffix}"
        section = raw.get(key, {})
        if not isinstance(section, dict):
            raise ConfigError(f"{path}.{key}", "must be a mapping of label name to value")
        for name, value in section.items():
            try:
                out.append(Matcher.create(str(name), str(value), is_regex=is_regex))
            except ValueError as exc:
                raise ConfigError(f"{path}.{key}.{name}", str(exc)) from None
    return out
