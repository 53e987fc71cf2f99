"""A Slack incoming-webhook stand-in on loopback that checks bodies as Slack documents them.

Slack cannot run here, so this receiver answers like an incoming webhook (200 "ok";
400 invalid_payload / no_text / invalid_blocks; 404 no_service; 429 with Retry-After; 5xx)
and validates every body against Slack's documented message limits. The recording server
is tests/peers/http_receiver.py's `HttpReceiver`; this module adds Slack's validator and answers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from tests.peers.http_receiver import HttpReceiver, Reply

__all__ = ["HttpReceiver", "Reply", "block_problems", "slack_problems", "slack_webhook"]

# Slack's Block Kit limits (https://api.slack.com/reference/block-kit/blocks).
MAX_BLOCKS = 50
SECTION_TEXT_MAX = 3000
HEADER_TEXT_MAX = 150
FIELDS_MAX = 10
FIELD_TEXT_MAX = 2000
CONTEXT_ELEMENTS_MAX = 10
KNOWN_BLOCKS = {
    "section",
    "header",
    "context",
    "divider",
    "actions",
    "image",
    "input",
    "rich_text",
    "file",
    "video",
    "markdown",
}
TEXT_TYPES = {"plain_text", "mrkdwn"}


def _text_problems(where: str, obj: Any, limit: int, *, plain_only: bool = False) -> list[str]:
    if not isinstance(obj, dict) or obj.get("type") not in TEXT_TYPES:
        return [f"{where}: must be a text object (plain_text or mrkdwn)"]
    if plain_only and obj["type"] != "plain_text":
        return [f"{where}: must be plain_text"]
    text = obj.get("text")
    if not isinstance(text, str) or not text:
        return [f"{where}.text: must be a non-empty string"]
    if len(text) > limit:
        return [f"{where}.text: {len(text)} characters, more than {limit}"]
    return []


def block_problems(blocks: Any, where: str = "blocks") -> list[str]:
    """What is wrong with a list of Block Kit blocks, by Slack's documented limits."""
    if not isinstance(blocks, list):
        return [f"{where}: must be a list"]
    problems = (
        [f"{where}: {len(blocks)} blocks, more than {MAX_BLOCKS}"]
        if len(blocks) > MAX_BLOCKS
        else []
    )
    for i, block in enumerate(blocks):
        at = f"{where}[{i}]"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind not in KNOWN_BLOCKS:
            problems.append(f"{at}: unknown block type {kind!r}")
        elif kind == "header":
            problems += _text_problems(
                f"{at}.text", block.get("text"), HEADER_TEXT_MAX, plain_only=True
            )
        elif kind == "section":
            if "text" not in block and "fields" not in block:
                problems.append(f"{at}: section needs text or fields")
            if "text" in block:
                problems += _text_problems(f"{at}.text", block["text"], SECTION_TEXT_MAX)
            fields = block.get("fields", [])
            if len(fields) > FIELDS_MAX:
                problems.append(f"{at}.fields: more than {FIELDS_MAX}")
            for j, item in enumerate(fields):
                problems += _text_problems(f"{at}.fields[{j}]", item, FIELD_TEXT_MAX)
        elif kind == "context":
            elements = block.get("elements")
            if not isinstance(elements, list) or not 1 <= len(elements) <= CONTEXT_ELEMENTS_MAX:
                problems.append(f"{at}.elements: 1 to {CONTEXT_ELEMENTS_MAX} elements")
            else:
                for j, item in enumerate(elements):
                    problems += _text_problems(f"{at}.elements[{j}]", item, SECTION_TEXT_MAX)
    return problems


def slack_problems(path: str, headers: Mapping[str, str], body: bytes) -> list[str]:
    """What Slack would reject in an incoming-webhook POST."""
    if not headers.get("content-type", "").startswith("application/json"):
        return ["content-type: must be application/json"]
    try:
        message = json.loads(body)
    except ValueError:
        return ["body: not JSON"]
    if not isinstance(message, dict):
        return ["body: must be a JSON object"]
    if not message.get("text") and not message.get("blocks") and not message.get("attachments"):
        return ["no_text"]
    problems = block_problems(message["blocks"]) if "blocks" in message else []
    total = len(message.get("blocks", []))
    for i, attachment in enumerate(message.get("attachments", [])):
        if not isinstance(attachment, dict):
            problems.append(f"attachments[{i}]: must be an object")
            continue
        if "blocks" in attachment:
            problems += block_problems(attachment["blocks"], f"attachments[{i}].blocks")
            total += len(attachment["blocks"])
    if total > MAX_BLOCKS:
        problems.append(f"{total} blocks in the message, more than {MAX_BLOCKS}")
    return problems


def _slack_invalid(problems: list[str]) -> Reply:
    code = (
        "no_text"
        if problems == ["no_text"]
        else ("invalid_blocks" if any("blocks" in p for p in problems) else "invalid_payload")
    )
    return Reply(400, code)


@contextmanager
def slack_webhook(
    token_path: str = "/services/T0000TEST/B0000TEST/XXXXsecretXXXX",
) -> Iterator[HttpReceiver]:
    """A Slack incoming webhook on loopback; its URL (with the secret path) is `.url`."""
    with HttpReceiver(
        path=token_path, validator=slack_problems, success=Reply(200, "ok"), invalid=_slack_invalid
    ) as receiver:
        yield receiver
