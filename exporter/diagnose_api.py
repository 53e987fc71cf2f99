"""`POST /api/v1/diagnose/<server>`: diagnostics and findings for one inventory server.

Authorized like the fleet writes (it runs commands on the host): the API bearer
token, or loopback clients only without a token file. The optional JSON body
`{"labels": {...}}` (the alert's labels) only orders the findings
(exporter.recommend); nothing from the request reaches the host but the choice
of server. Errors are 4xx with one line: 400 bad body, 401, 404 unknown server,
409 push-only (never contacted over SSH). A recommender that raises costs the
findings only: the report is still answered, with one finding saying so.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from exporter.diagnose import Diagnoser
from exporter.recommend import Finding, Recommender, RuleRecommender

if TYPE_CHECKING:
    from exporter.app import ExporterApp

log = logging.getLogger(__name__)

PREFIX = "/api/v1/diagnose/"
MAX_LABELS = 64


class DiagnoseApi:
    def __init__(self, app: ExporterApp, recommender: Recommender | None = None) -> None:
        self.app = app
        # Local mode runs the script on this machine; otherwise over the pool.
        self.diagnoser = Diagnoser(None if app.inventory.local else app.pool)
        self.recommender = recommender or RuleRecommender()

    def handle(self, method: str, path: str, body: bytes, authorized: bool) -> tuple[int, Any]:
        if method != "POST":
            return 405, {"error": "use POST (a diagnosis runs commands on the host)"}
        if not authorized:
            return 401, {
                "error": "diagnostics need a valid bearer token "
                "(or a loopback client when no token file is set)"
            }
        name = unquote(path[len(PREFIX) :]).strip("/")
        labels = _labels(body)
        if isinstance(labels, str):
            return 400, {"error": labels}
        server = self.app.inventory.server(name) if name else None
        if server is None:
            return 404, {"error": f"no server named {name[:100]!r} in the inventory"}
        if server.push_only:
            return 409, {
                "error": f"{server.name} is push-only: the exporter never connects "
                "to it, so it cannot diagnose it"
            }
        # The configured logs' last matching line per pattern, as the probes saw them
        # (exporter.checks.logs: truncated, credentials masked); no extra read of the host.
        report = {
            **self.diagnoser.diagnose(server),
            "log_matches": self.app.prober.log_matches(server.name),
        }
        try:
            findings = self.recommender.recommend(labels, report)
        except Exception as exc:  # noqa: BLE001 - a provider's bug must not cost the report
            log.exception(
                "recommender %s failed for %s", type(self.recommender).__name__, server.name
            )
            findings = [
                Finding(
                    f"no findings: the recommender failed ({type(exc).__name__})",
                    "read the report itself; the exporter's log has the error",
                    [],
                    "incomplete",
                )
            ]
        return 200, {**report, "findings": [f.to_json() for f in findings]}


def _labels(body: bytes) -> dict[str, str] | str:
    """The alert labels from the body, or an error text."""
    if not body.strip():
        return {}
    try:
        raw = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return f"invalid JSON: {exc}"
    labels = raw.get("labels", {}) if isinstance(raw, dict) else None
    if (
        not isinstance(labels, dict)
        or len(labels) > MAX_LABELS
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items())
    ):
        return f'expected {{"labels": {{name: value}}}} with at most {MAX_LABELS} string labels'
    return {k[:100]: v[:200] for k, v in labels.items()}
