"""Editing the inventory file in place: add or update one server.

Edited as text where possible, so that the operator's comments and layout survive:
PyYAML's node marks locate the `servers` list, the item to replace and the place to
append. The result is re-parsed and must equal the intended data; if it does not (an
unusual layout), the file is rewritten from the data instead, which keeps every value.
"""

from __future__ import annotations

import contextlib
import copy
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml


class InventoryEditError(ValueError):
    """The inventory file cannot be read or does not have the expected shape."""


class _CannotEdit(Exception):
    """The file's layout is not one the text editor handles; fall back to a rewrite."""


def load_inventory(path: Path) -> dict[str, Any]:
    """The inventory as plain data (empty when the file does not exist yet)."""
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise InventoryEditError(f"inventory {path} could not be read: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InventoryEditError(f"inventory {path} must be a mapping at the top level")
    for key, kind in (("servers", list), ("credentials", dict), ("defaults", dict)):
        if data.get(key) is not None and not isinstance(data[key], kind):
            raise InventoryEditError(f"inventory {path}: `{key}` must be a {kind.__name__}")
    return data


def upsert_server(
    path: Path,
    entry: dict[str, Any],
    *,
    credentials: tuple[str, dict[str, Any] | None],
    known_hosts: str | None,
) -> bool:
    """Add or update a server (and a new credentials entry); False if comments were lost."""
    text = path.read_text() if path.exists() else ""
    data = load_inventory(path)
    merged, wanted = _merged(data, entry, credentials, known_hosts)
    return _write_edit(
        path, text, wanted, lambda: _edit_text(text, merged, credentials, known_hosts)
    )


def _write_edit(path: Path, text: str, wanted: dict[str, Any], edit: Callable[[], str]) -> bool:
    """Write `edit()` if it parses to `wanted` (comments and order kept), else `wanted`
    dumped afresh; False if that lost comments."""
    try:
        edited = edit()
        kept = yaml.safe_load(edited) == wanted
    except (_CannotEdit, yaml.YAMLError):
        kept = False
    if not kept:
        edited = _dump(wanted)
    _write_atomically(path, edited)
    return kept or "#" not in text


def _merged(
    data: dict[str, Any],
    entry: dict[str, Any],
    credentials: tuple[str, dict[str, Any] | None],
    known_hosts: str | None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    wanted = copy.deepcopy(data)
    servers = wanted.setdefault("servers", []) if wanted.get("servers") else []
    wanted["servers"] = servers
    old = next((s for s in servers if isinstance(s, dict) and s.get("name") == entry["name"]), None)
    # An update keeps what onboarding does not decide (labels, module, tokens, suspended...),
    # but the route is the one that just worked: a jump not asked for is dropped.
    merged = {**(old or {}), **entry}
    if "jump" not in entry:
        merged.pop("jump", None)
    if old is None:
        servers.append(merged)
    else:
        servers[servers.index(old)] = merged
    name, new_creds = credentials
    if new_creds is not None:
        wanted["credentials"] = {**(wanted.get("credentials") or {}), name: new_creds}
    if known_hosts:
        wanted["known_hosts"] = known_hosts
    return merged, wanted


def _edit_text(
    text: str,
    merged: dict[str, Any],
    credentials: tuple[str, dict[str, Any] | None],
    known_hosts: str | None,
) -> str:
    if text and not text.endswith("\n"):
        text += "\n"
    root = yaml.compose(text)
    if root is not None and not isinstance(root, yaml.MappingNode):
        raise _CannotEdit
    top = {k.value: v for k, v in root.value} if root is not None else {}
    edits: list[tuple[int, int, str]] = []

    def append_top(obj: dict[str, Any]) -> None:
        edits.append((len(text), len(text), _dump(obj)))

    if known_hosts:
        if "known_hosts" in top:
            raise _CannotEdit
        append_top({"known_hosts": known_hosts})
    cred_name, new_creds = credentials
    if new_creds is not None:
        node = top.get("credentials")
        if node is None:
            append_top({"credentials": {cred_name: new_creds}})
        else:
            col = _block_mapping_column(node)
            block = _indent(_dump({cred_name: new_creds}), col)
            edits.append((*_after(text, _content_end(node)), block))
    if "servers" not in top:
        append_top({"servers": [merged]})
    else:
        node = top["servers"]
        if not isinstance(node, yaml.SequenceNode) or node.flow_style or not node.value:
            raise _CannotEdit
        item = next((i for i in node.value if _name_of(i) == merged["name"]), None)
        if item is not None:
            end = text.find("\n", _content_end(item))
            end = len(text) if end < 0 else end
            body = _dump(merged).rstrip("\n").replace("\n", "\n" + " " * item.start_mark.column)
            edits.append((item.start_mark.index, end, body))
        else:
            first = node.value[0].start_mark.index
            line = text[text.rfind("\n", 0, first) + 1 : first]
            dash_col = len(line) - len(line.lstrip())
            edits.append((*_after(text, _content_end(node)), _indent(_dump([merged]), dash_col)))

    # Back to front so earlier offsets stay valid; equal offsets keep their order.
    ordered = sorted(enumerate(edits), key=lambda e: (e[1][0], e[0]), reverse=True)
    for _, (start, end, new) in ordered:
        text = text[:start] + new + text[end:]
    return text


def _block_mapping_column(node: yaml.Node | None) -> int:
    if not isinstance(node, yaml.MappingNode) or node.flow_style or not node.value:
        raise _CannotEdit
    return int(node.value[0][0].start_mark.column)


def _name_of(node: yaml.Node) -> object:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if key.value == "name" and isinstance(value, yaml.ScalarNode):
                return value.value
    return None


def _content_end(node: yaml.Node) -> int:
    """Where a block node's own text ends (its end mark runs on over trailing comments)."""
    if isinstance(node, yaml.MappingNode) and not node.flow_style and node.value:
        key, value = node.value[-1]
        if isinstance(value, yaml.ScalarNode) and value.value == "" and value.style is None:
            return int(key.end_mark.index)  # `key:` with no value: its mark is the next token's
        return _content_end(value)
    if isinstance(node, yaml.SequenceNode) and not node.flow_style and node.value:
        return _content_end(node.value[-1])
    if isinstance(node, yaml.ScalarNode) and node.style in ("|", ">"):
        raise _CannotEdit  # block scalars end wherever their indentation ends
    return int(node.end_mark.index)


def _after(text: str, index: int) -> tuple[int, int]:
    """The (start, end) of an insertion right after the line holding `index`."""
    newline = text.find("\n", index)
    pos = len(text) if newline < 0 else newline + 1
    return pos, pos


def _indent(block: str, column: int) -> str:
    return "".join(
        " " * column + line if line.strip() else line for line in block.splitlines(keepends=True)
    )


def _dump(obj: object) -> str:
    return yaml.safe_dump(obj, sort_keys=False, default_flow_style=False, allow_unicode=True)


def _write_atomically(path: Path, text: str) -> None:
    """Replace `path` in one rename so a crash never leaves half an inventory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o777 if path.exists() else None
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, mode if mode is not None else 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def replace_server(path: Path, entry: dict[str, Any]) -> bool:
    """Replace the server named `entry["name"]` by exactly `entry` (it must exist).

    Used by suspend, resume and push-token changes: keys the operator set stay
    because the caller starts from the current entry. False if comments were lost.
    """
    text = path.read_text() if path.exists() else ""
    data = load_inventory(path)
    servers = data.get("servers") or []
    index = next(
        (
            i
            for i, s in enumerate(servers)
            if isinstance(s, dict) and s.get("name") == entry["name"]
        ),
        None,
    )
    if index is None:
        raise InventoryEditError(f"no server named {entry['name']!r} in {path}")
    wanted = copy.deepcopy(data)
    wanted["servers"][index] = entry
    return _write_edit(
        path,
        text,
        wanted,
        lambda: _edit_text(text, entry, (entry.get("credentials", ""), None), None),
    )


def remove_server(path: Path, name: str) -> bool:
    """Remove the server `name` (it must exist); False if comments were lost.

    The item's lines are cut from its dash to the end of its last line, so the
    comments above and below it and every other entry stay as they were.
    """
    text = path.read_text() if path.exists() else ""
    data = load_inventory(path)
    servers = data.get("servers") or []
    if not any(isinstance(s, dict) and s.get("name") == name for s in servers):
        raise InventoryEditError(f"no server named {name!r} in {path}")
    wanted = copy.deepcopy(data)
    wanted["servers"] = [s for s in servers if not (isinstance(s, dict) and s.get("name") == name)]
    return _write_edit(path, text, wanted, lambda: _cut_item(text, name))


def _cut_item(text: str, name: str) -> str:
    root = yaml.compose(text)
    if not isinstance(root, yaml.MappingNode):
        raise _CannotEdit
    node = {k.value: v for k, v in root.value}.get("servers")
    if not isinstance(node, yaml.SequenceNode) or node.flow_style:
        raise _CannotEdit
    items = node.value
    at = next((i for i, item in enumerate(items) if _name_of(item) == name), None)
    if at is None:
        raise _CannotEdit
    if len(items) == 1:
        # The last server: `servers: []` keeps the key (and the file) valid.
        start = text.rfind("\n", 0, items[0].start_mark.index) + 1
        end = text.find("\n", _content_end(items[0]))
        end = len(text) if end < 0 else end + 1
        key_line_end = text.rfind("\n", 0, start)
        if text[: max(key_line_end, 0)].rstrip().endswith("servers:"):
            return text[:key_line_end].rstrip() + " []\n" + text[end:]
        raise _CannotEdit
    start = text.rfind("\n", 0, items[at].start_mark.index) + 1
    end = text.find("\n", _content_end(items[at]))
    end = len(text) if end < 0 else end + 1
    return text[:start] + text[end:]
