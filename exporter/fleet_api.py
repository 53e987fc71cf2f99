"""`/api/v1/servers`: the fleet over HTTP, for the console and automation.

    GET    /api/v1/servers                     every server: status, last heartbeat, reason
    GET    /api/v1/servers/<name>              one server (with its last log matches)
    POST   /api/v1/servers                     add: {"name", "host", ...} (key already
                                               authorized; logged in to before writing)
    DELETE /api/v1/servers/<name>[?remove_key=1]
    POST   /api/v1/servers/<name>/suspend|resume|test|token

Reads are open like /sd; writes are authorized by the caller (server.py: a bearer
token from the API token file, or loopback clients only without one). The
operations are exporter.fleet's, the same as `stacksense servers`; every write
edits the exporter's own inventory file and reloads it. Errors are 4xx with one
line saying what is wrong: 400 invalid, 404 unknown server, 409 not possible now.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote

from exporter.config import ConfigError, Server
from exporter.errors import ProbeFailure
from exporter.fleet import Fleet, FleetError, NotFound
from exporter.heartbeats import SOURCES
from exporter.probe import LastProbe

if TYPE_CHECKING:
    from exporter.app import ExporterApp

PREFIX = "/api/v1/servers"
ACTIONS = ("suspend", "resume", "test", "token")


def server_view(
    server: Server, now: float, beats: dict[tuple[str, str], float], last: LastProbe | None
) -> dict[str, Any]:
    """One server as the exporter sees it (the rule engine's status, when reachable, wins).

    pending: never reached yet; online: its last probe (or push heartbeat) is fresh;
    failing: reached before, its last probe failed; offline: a push host whose
    heartbeat is older than push_offline_after_seconds; suspended.
    """
    times = {s: beats[(server.name, s)] for s in SOURCES if (server.name, s) in beats}
    newest = max(times.values(), default=None)
    view: dict[str, Any] = {
        "name": server.name,
        "mode": server.mode,
        "module": server.module,
        "host": None if server.push_only else server.host,
        "port": None if server.push_only else server.port,
        "labels": dict(server.labels),
        "suspended": server.suspended,
        "last_heartbeat": newest,
        "last_heartbeat_by_source": times,
        "heartbeat_age_seconds": None if newest is None else round(now - newest, 3),
        "status": "online",
        "reason": None,
        "detail": None,
        "message": None,
        "last_probe": None,
    }
    if last is not None:
        view["last_probe"] = {"at": last.at, "success": last.success, "reason": last.reason}
    if server.suspended:
        view["status"] = "suspended"
    elif server.push_only:
        pushed = times.get("push")
        if pushed is None:
            view.update(
                status="pending", reason="no_heartbeat", message="no push heartbeat received yet"
            )
        elif now - pushed > server.push_offline_after_seconds:
            view.update(
                status="offline",
                reason="no_heartbeat",
                message=f"last push heartbeat {now - pushed:.0f}s ago "
                f"(offline after {server.push_offline_after_seconds:g}s)",
            )
    elif last is None:
        view.update(status="pending", message="not probed yet")
    elif not last.success and last.reason != "parse":
        view.update(
            status="failing" if "ssh" in times else "pending",
            reason=last.reason,
            detail=last.detail,
            message=last.message,
        )
    return view


class FleetApi:
    """Routes `/api/v1/servers...`; `handle` returns (status, JSON payload)."""

    def __init__(self, app: ExporterApp) -> None:
        self.app = app

    def views(self) -> list[dict[str, Any]]:
        app = self.app
        beats, _ = app.heartbeats.snapshot()
        last = app.prober.last_probes()
        now = time.time()
        return [
            server_view(s, now, beats, last.get(s.name)) for s in app.inventory.servers.values()
        ]

    def handle(
        self, method: str, path: str, query: str, body: bytes, authorized: bool
    ) -> tuple[int, Any]:
        rest = path[len(PREFIX) :].strip("/")
        parts = [unquote(p) for p in rest.split("/")] if rest else []
        if method in ("GET", "HEAD"):
            return self._get(parts)
        if method not in ("POST", "DELETE"):
            return 405, {"error": f"method {method} not allowed here"}
        if not authorized:
            return 401, {
                "error": "server changes need a valid bearer token "
                "(or a loopback client when no token file is set)"
            }
        if self.app.config_path is None:
            return 409, {
                "error": "the exporter runs without an inventory file (local mode); "
                "start it with --config.file to manage servers"
            }
        fleet = Fleet(Path(self.app.config_path))
        try:
            if method == "POST" and not parts:
                return self._add(fleet, body)
            if method == "DELETE" and len(parts) == 1:
                remove_key = parse_qs(query).get("remove_key", ["0"])[0] in ("1", "true")
                return self._changed(
                    200,
                    {"server": parts[0], "result": fleet.remove(parts[0], remove_key=remove_key)},
                )
            if method == "POST" and len(parts) == 2 and parts[1] in ACTIONS:
                return self._action(fleet, parts[0], parts[1])
        except NotFound as exc:
            return 404, {"error": str(exc)}
        except FleetError as exc:
            return 400, {"error": str(exc)}
        except ProbeFailure as exc:
            return 409, {"error": f"{exc.reason}: {exc.short_message()}", "reason": exc.reason}
        except OSError as exc:  # the inventory or its directory cannot be written
            return 409, {"error": f"cannot write the inventory: {exc.strerror}"}
        return 404, {"error": "not found"}

    def _get(self, parts: list[str]) -> tuple[int, Any]:
        if not parts:
            return 200, {"servers": self.views()}
        if len(parts) == 1:
            view = next((v for v in self.views() if v["name"] == parts[0]), None)
            if view is None:
                return 404, {"error": f"unknown server {parts[0]!r}"}
            view["log_matches"] = self.app.prober.log_matches(parts[0])
            return 200, view
        return 404, {"error": "not found"}

    def _add(self, fleet: Fleet, body: bytes) -> tuple[int, Any]:
        try:
            raw = json.loads(body or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return 400, {"error": f"invalid JSON: {exc}"}
        if not isinstance(raw, dict):
            return 400, {"error": "expected a JSON object with name and host"}
        result = fleet.add(raw)
        return self._changed(
            201 if result == "added" else 200, {"server": raw.get("name"), "result": result}
        )

    def _action(self, fleet: Fleet, name: str, action: str) -> tuple[int, Any]:
        if action == "test":
            return 200, self.test(name)
        if action == "token":
            token = fleet.new_push_token(name)
            status, payload = self._changed(200, {"server": name, "result": "new token"})
            if status == 200:
                payload["token"] = token  # shown once; only its hash is stored
            return status, payload
        result = fleet.set_suspended(name, action == "suspend")
        return self._changed(200, {"server": name, "result": result})

    def _changed(self, status: int, payload: dict[str, Any]) -> tuple[int, Any]:
        try:
            self.app.reload()
        except ConfigError as exc:
            return 409, {
                **payload,
                "error": f"the inventory was written but the reload failed: {exc}",
            }
        return status, payload

    def test(self, name: str) -> dict[str, Any]:
        """One probe now, summarised (the same probe Prometheus would get)."""
        from exporter.probe_summary import summarize

        server = self.app.inventory.server(name)
        if server is None:
            raise NotFound(f"no server named {name!r} in the inventory")
        if server.push_only:
            view = next(v for v in self.views() if v["name"] == name)
            return {
                "server": name,
                "success": view["status"] == "online",
                "summary": [
                    f"push-only: never contacted; {view['status']}"
                    + (f" ({view['message']})" if view["message"] else "")
                ],
            }
        module = self.app.inventory.modules[server.module]
        result = self.app.probe(server, module, None)
        return {
            "server": name,
            "success": result.success,
            "duration_seconds": round(result.duration, 3),
            "reason": result.failure.reason if result.failure else None,
            "message": result.failure.short_message() if result.failure else None,
            "summary": summarize(result.text),
        }
