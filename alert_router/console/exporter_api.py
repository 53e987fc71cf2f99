"""Server actions through the exporter's `/api/v1/servers`: suspend, resume, test, add, remove;
and a diagnosis through its `/api/v1/diagnose/<server>`.

Writes carry `Authorization: Bearer <token>` with the token read from
`console.exporter_token_file` at each call (so a rotated token needs no restart); without
that setting none is sent and the exporter accepts the console only from loopback. The
token never appears in a message, a log line or an exception this module lets out.

Every function answers an `Answer`: whether it worked, what the exporter said, and one
line for a person. A down, slow or refusing exporter is an answer, never an exception.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

from alert_router.console.settings import ConsoleConfig
from alert_router.diagnostics.fetch import summarize

PREFIX = "/api/v1/servers"
DIAGNOSE_PREFIX = "/api/v1/diagnose"
# A test probe or an add (which logs in to the new host once) can take as long as a probe.
SLOW_TIMEOUT = 30.0
# The exporter ends a diagnostic run at its own deadline (exporter.diagnose.DEADLINE) and
# answers with what arrived; this bound adds room for the connection and the findings, and
# keeps a person's request well inside a gunicorn worker's timeout when the exporter hangs.
DIAGNOSE_TIMEOUT = 15.0
MAX_SECTIONS = 20
MAX_MESSAGE = 400


@dataclass
class Answer:
    ok: bool
    message: str = ""  # one line for the page (the exporter's own error when it gave one)
    status: int = 0  # the exporter's HTTP status; 0 when it was not reached
    data: dict[str, Any] = field(default_factory=dict)


def read_token(cfg: ConsoleConfig) -> tuple[str | None, str]:
    """(token or None, error); the error names the setting and the OS reason, not the file's
    content."""
    if not cfg.exporter_token_file:
        return None, ""
    try:
        token = Path(cfg.exporter_token_file).read_text(encoding="utf-8").strip()
    except OSError as exc:
        return None, (
            f"cannot read console.exporter_token_file ({exc.strerror or type(exc).__name__})"
        )
    except UnicodeDecodeError:
        return None, "console.exporter_token_file is not UTF-8 text"
    if not token:
        return None, "console.exporter_token_file is empty"
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in token):
        return None, "console.exporter_token_file holds more than one word (a token has no spaces)"
    return token, ""


def _one_line(text: str) -> str:
    return " ".join(text.split())[:MAX_MESSAGE]


def call(
    cfg: ConsoleConfig,
    method: str,
    path: str = "",
    *,
    body: Any = None,
    params: dict[str, str] | None = None,
    slow: bool = False,
    prefix: str = PREFIX,
    timeout: float | None = None,
) -> Answer:
    """One request to the exporter's API; `path` follows `prefix` (the fleet API's by
    default); `timeout` replaces the one `slow` chooses."""
    headers: dict[str, str] = {}
    if method != "GET":
        token, error = read_token(cfg)
        if error:
            return Answer(False, error)
        if token:
            headers["Authorization"] = f"Bearer {token}"
    url = f"{cfg.exporter_url}{prefix}{path}"
    if timeout is None:
        timeout = max(cfg.request_timeout, SLOW_TIMEOUT) if slow else cfg.request_timeout
    try:
        resp = requests.request(
            method, url, json=body, params=params, headers=headers, timeout=timeout
        )
    except requests.Timeout:
        return Answer(
            False, f"the exporter at {cfg.exporter_url} did not answer within {timeout:g}s"
        )
    except requests.RequestException as exc:
        return Answer(
            False, f"cannot reach the exporter at {cfg.exporter_url} ({type(exc).__name__})"
        )
    try:
        data = resp.json()
    except ValueError:
        data = None
    payload = data if isinstance(data, dict) else {}
    if 200 <= resp.status_code < 300:
        return Answer(True, status=resp.status_code, data=payload)
    said = _one_line(str(payload.get("error") or "")) if payload else ""
    if resp.status_code == 401:
        if headers:
            hint = (
                "the exporter refused the console's token: console.exporter_token_file "
                "must hold the exporter's --web.api-token-file token (or its reload token)"
            )
        else:
            hint = (
                "the exporter wants a token: set console.exporter_token_file to a file "
                "holding its --web.api-token-file token (without one the exporter "
                "accepts changes from its own host only)"
            )
        return Answer(False, hint, resp.status_code, payload)
    if not said:
        if resp.status_code in (404, 405):
            said = (
                f"the exporter at {cfg.exporter_url} has no {prefix} API "
                f"(HTTP {resp.status_code}): is it older than the console?"
            )
        else:
            said = f"the exporter answered HTTP {resp.status_code}"
    return Answer(False, said, resp.status_code, payload)


def _path(name: str) -> str:
    return "/" + quote(name, safe="")


def inventory(cfg: ConsoleConfig) -> Answer:
    """Every server as the exporter lists it; `data["servers"]` is a list of dicts."""
    got = call(cfg, "GET")
    if got.ok:
        servers = got.data.get("servers")
        if not isinstance(servers, list):
            return Answer(False, "the exporter answered an unexpected shape", got.status)
        got.data = {
            "servers": sorted(
                (s for s in servers if isinstance(s, dict) and isinstance(s.get("name"), str)),
                key=lambda s: s["name"],
            )
        }
    return got


def server(cfg: ConsoleConfig, name: str) -> Answer:
    """One server as the exporter sees it (with `suspended`)."""
    return call(cfg, "GET", _path(name))


def set_suspended(cfg: ConsoleConfig, name: str, suspended: bool) -> Answer:
    got = call(cfg, "POST", _path(name) + ("/suspend" if suspended else "/resume"))
    if got.ok:
        result = str(got.data.get("result") or ("suspended" if suspended else "resumed"))
        got.message = (
            f"Monitoring of {name} {'suspended' if suspended else 'resumed'} ({_one_line(result)})."
        )
    return got


def run_test_probe(cfg: ConsoleConfig, name: str) -> Answer:
    """One probe now through the exporter; the message says success or the failure's reason."""
    got = call(cfg, "POST", _path(name) + "/test", slow=True)
    if not got.ok:
        return got
    d = got.data
    took = d.get("duration_seconds")
    took_text = f" in {took:.2f} s" if isinstance(took, int | float) else ""
    raw_summary = d.get("summary")
    summary: list[Any] = raw_summary if isinstance(raw_summary, list) else []
    details = "; ".join(_one_line(str(s)) for s in summary[:4])
    if d.get("success") is True:
        got.message = f"Test probe of {name} succeeded{took_text}" + (
            f": {details}" if details else "."
        )
        return got
    reason = _one_line(str(d.get("reason") or ""))
    message = _one_line(str(d.get("message") or ""))
    text = f"Test probe of {name} failed{took_text}"
    text += f": {reason}" if reason else ""
    text += f" ({message})" if message else ""
    if details and not (reason or message):
        text += f": {details}"
    return Answer(False, _one_line(text), got.status, d)


def add(cfg: ConsoleConfig, entry: dict[str, Any]) -> Answer:
    got = call(cfg, "POST", body=entry, slow=True)
    if got.ok:
        result = _one_line(str(got.data.get("result") or "added"))
        got.message = f"Server {entry.get('name')} {result}."
    return got


def remove(cfg: ConsoleConfig, name: str, *, remove_key: bool = False) -> Answer:
    got = call(
        cfg,
        "DELETE",
        _path(name),
        params={"remove_key": "1"} if remove_key else None,
        slow=remove_key,
    )
    if got.ok:
        got.message = f"Server {name} removed from the inventory."
    return got


def _sections(raw: object) -> dict[str, str]:
    """Each section's status as the exporter named it (ok, timed_out, failed, ...), bounded."""
    if not isinstance(raw, dict):
        return {}
    return {
        _one_line(str(k))[:60]: _one_line(str(v))[:40]
        for k, v in sorted(raw.items(), key=lambda kv: str(kv[0]))[:MAX_SECTIONS]
    }


def diagnose(cfg: ConsoleConfig, name: str, alertname: str = "") -> Answer:
    """The exporter's diagnosis of one server, as notifications carry it (findings with their
    action and evidence: alert_router.diagnostics.fetch.summarize) plus each section's
    status; `alertname` only orders the findings. `data` is that summary on success."""
    labels = {"alertname": alertname} if alertname else {}
    timeout = max(cfg.request_timeout, DIAGNOSE_TIMEOUT)
    got = call(
        cfg, "POST", _path(name), body={"labels": labels}, prefix=DIAGNOSE_PREFIX, timeout=timeout
    )
    if not got.ok:
        return got
    if not isinstance(got.data.get("findings"), list):
        return Answer(False, "the exporter answered an unexpected shape (no findings)", got.status)
    summary = summarize(name, got.data)
    summary["sections"] = _sections(got.data.get("sections"))
    summary["cached"] = got.data.get("cached") is True
    took = summary.get("duration_seconds")
    summary["duration_seconds"] = (
        took if isinstance(took, int | float) and not isinstance(took, bool) else None
    )
    count = len(summary["findings"])
    found = f"{count} finding{'s' if count != 1 else ''}" if count else "nothing stands out"
    got.data = summary
    got.message = (
        f"Diagnostics of {name}: {found}" + ("" if summary["complete"] else " (incomplete)") + "."
    )
    return got
