"""Decode a request body strictly: UTF-8 JSON that can be stored and read back as sent.

Refused with a 400 naming what is wrong: another charset, bytes that are not UTF-8, nesting
deeper than the parser allows, and lone UTF-16 surrogates (`"\\ud800"`), which JSON can
spell but UTF-8 (hence the store, every reply and every receiver) cannot carry.
"""

from __future__ import annotations

import json
import re
from typing import Any

from alert_router.errors import InputError

UTF8_NAMES = frozenset({"utf-8", "utf8"})
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def check_charset(content_type: str | None) -> None:
    """InputError unless the Content-Type's charset, if any, is UTF-8."""
    if not content_type:
        return
    for param in content_type.split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip('"').lower()
            if charset not in UTF8_NAMES:
                raise InputError(
                    f"Content-Type: charset {charset[:40]!r} is not supported, send UTF-8 JSON"
                )


def is_json(content_type: str | None) -> bool:
    """Whether the Content-Type is application/json (or a +json type)."""
    media = (content_type or "").split(";")[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def _surrogate_path(value: Any, path: str) -> str | None:
    """The path of the first string (key or value) holding a lone surrogate, if any."""
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return where or "body"
        elif isinstance(item, dict):
            for key, child in reversed(list(item.items())):
                try:
                    key.encode("utf-8")
                except UnicodeEncodeError:
                    return f"{where}.<name>" if where else "<name>"
                stack.append((child, f"{where}.{key}" if where else key))
        elif isinstance(item, list):
            stack.extend((child, f"{where}[{i}]") for i, child in reversed(list(enumerate(item))))
    return None


def decode_json(data: bytes, *, list_name: str = "body", content_type: str | None = None) -> Any:
    """`data` as JSON; InputError names the field or the property that makes it unstorable.

    list_name names a top-level list in error paths (`alerts[0].labels.x`).
    """
    check_charset(content_type)
    if not data:
        raise InputError("body: empty, a JSON document is required")
    try:
        # Strict UTF-8: json.loads(bytes) would guess UTF-16 or UTF-32 and store the result.
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"body: not valid UTF-8 (byte {exc.start}); send UTF-8 JSON") from None
    try:
        body = json.loads(text)
    except RecursionError:
        raise InputError("body: JSON nested too deeply") from None
    except ValueError as exc:
        raise InputError(f"body: invalid JSON: {exc}") from None
    # A lone surrogate can only come from a \ud800-\udfff escape: look only then (most
    # bodies have no backslash at all, which is a memchr away).
    if "\\" in text and _SURROGATE_ESCAPE.search(text):
        where = _surrogate_path(body, list_name if isinstance(body, list) else "")
        if where is not None:
            raise InputError(
                f"{where}: contains a lone UTF-16 surrogate (\\ud800-\\udfff), "
                "which is not valid Unicode text"
            )
    return body
