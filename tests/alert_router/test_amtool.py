"""amtool and the v2 API answer the same against the router (gunicorn, 2 workers) as
against a real Alertmanager 0.25 on one config: routes, silence import of both systems'
exports, re-posting unknown or expired silences, expiring an expired one, error bodies."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.peers.alertmanager import AMTOOL, alertmanager
from tests.peers.router import router
from tests.peers.util import wait_for

pytestmark = pytest.mark.slow

CONFIG = {
    "route": {
        "receiver": "hook",
        "group_by": ["alertname"],
        "routes": [
            {"receiver": "pager", "matchers": ['severity=~"crit.*"'], "continue": True},
            {"receiver": "hook", "matchers": ['team="db"'], "group_by": ["alertname", "server"]},
        ],
    },
    "receivers": [
        {"name": "hook", "webhook_configs": [{"url": "http://127.0.0.1:9/hook"}]},
        {
            "name": "pager",
            "webhook_configs": [{"url": "http://127.0.0.1:9/pager?token=secret-token-abc"}],
        },
    ],
}


@dataclass
class Target:
    name: str
    url: str
    headers: dict[str, str]
    http_config: Path | None

    def amtool(self, *args: str) -> subprocess.CompletedProcess[str]:
        extra = [f"--http.config.file={self.http_config}"] if self.http_config else []
        return subprocess.run(
            [AMTOOL, f"--alertmanager.url={self.url}", *extra, *args],
            capture_output=True,
            text=True,
            timeout=60,
        )

    def post_silence(self, body: dict[str, Any]) -> requests.Response:
        return requests.post(
            f"{self.url}/api/v2/silences", json=body, headers=self.headers, timeout=10
        )


@pytest.fixture(scope="module")
def targets(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Target, Target]]:
    tmp = tmp_path_factory.mktemp("amtool")
    (tmp / "am").mkdir()
    with alertmanager(tmp / "am", CONFIG) as am, router(tmp / "router", CONFIG, workers=2) as proc:
        http_config = tmp / "amtool-http.yml"
        http_config.write_text(f"authorization:\n  credentials: {proc.token}\n")
        yield (
            Target("alertmanager", am.url, {}, None),
            Target("router", proc.url, proc.auth, http_config),
        )


def _iso(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _silence(value: str, **override: Any) -> dict[str, Any]:
    body = {
        "matchers": [{"name": "alertname", "value": value, "isRegex": False, "isEqual": True}],
        "startsAt": _iso(timedelta(0)),
        "endsAt": _iso(timedelta(hours=1)),
        "createdBy": "tester",
        "comment": "compat",
    }
    body.update(override)
    return body


def test_config_routes_prints_the_same_tree(targets):
    outputs = []
    for target in targets:
        result = target.amtool("config", "routes")
        assert result.returncode == 0, f"{target.name}: {result.stderr}"
        outputs.append(result.stdout)
    assert outputs[0] == outputs[1]
    assert "continue: true  receiver: pager" in outputs[1]


def test_status_hides_secret_urls_but_keeps_them_urls(targets):
    status = requests.get(f"{targets[1].url}/api/v2/status", timeout=10).json()
    original = status["config"]["original"]
    assert "secret-token-abc" not in original
    assert "http://127.0.0.1:9/<secret>" in original
    assert "storage" not in original and "auth:" not in original


def test_silence_import_of_both_exports_into_both(targets, tmp_path):
    exports = {}
    for target in targets:
        created = target.amtool(
            "silence",
            "add",
            f"alertname=Import{target.name}",
            "--comment=exported",
            "--duration=2h",
        )
        assert created.returncode == 0, created.stderr
        query = target.amtool("silence", "query", "-o", "json")
        assert query.returncode == 0, query.stderr
        path = tmp_path / f"{target.name}.json"
        path.write_text(query.stdout)
        exports[target.name] = path
    for target in targets:
        for source, path in exports.items():
            result = target.amtool("silence", "import", str(path))
            assert result.returncode == 0, f"{source} -> {target.name}: {result.stderr}"
            assert "error" not in result.stderr.lower(), result.stderr
        listed = json.loads(target.amtool("silence", "query", "-o", "json").stdout)
        names = {
            m["value"] for s in listed for m in s["matchers"] if s["status"]["state"] == "active"
        }
        assert {"Importalertmanager", "Importrouter"} <= names, target.name


def test_reposting_and_expiring_answer_like_alertmanager(targets):
    answers: dict[str, list[Any]] = {}
    for target in targets:
        seen: list[Any] = []
        unknown = target.post_silence(
            _silence("Unknown", id="11111111-2222-3333-4444-555555555555")
        )
        seen.append((unknown.status_code, isinstance(unknown.json(), str)))
        first = target.post_silence(_silence("Expire")).json()["silenceID"]
        expire = requests.delete(
            f"{target.url}/api/v2/silence/{first}", headers=target.headers, timeout=10
        )
        again = requests.delete(
            f"{target.url}/api/v2/silence/{first}", headers=target.headers, timeout=10
        )
        seen += [expire.status_code, again.status_code]
        # Alertmanager ends the silence "now": let its clock pass that instant first.
        silence_url = f"{target.url}/api/v2/silence/{first}"
        wait_for(
            lambda url=silence_url: (
                requests.get(url, timeout=10).json()["status"]["state"] == "expired"
            ),
            timeout=10,
            what=f"{target.name}: the silence expired",
        )
        repost = target.post_silence(_silence("Expire", id=first))
        new_id = repost.json()["silenceID"]
        seen += [repost.status_code, new_id != first]
        old = requests.get(f"{target.url}/api/v2/silence/{first}", timeout=10).json()
        new = requests.get(f"{target.url}/api/v2/silence/{new_id}", timeout=10).json()
        seen += [old["status"]["state"], new["status"]["state"]]
        answers[target.name] = seen
    assert answers["router"] == answers["alertmanager"], answers
    assert answers["router"] == [(404, True), 200, 200, 200, True, "expired", "active"]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/v2/alerts", [{"labels": {}}]),
        (
            "POST",
            "/api/v2/alerts",
            [
                {
                    "labels": {"alertname": "A"},
                    "startsAt": "2030-01-02T00:00:00Z",
                    "endsAt": "2030-01-01T00:00:00Z",
                }
            ],
        ),
        ("GET", "/api/v2/alerts?filter=alertname%3D~%22(%22", None),
        ("GET", "/api/v2/silences?filter=alertname%3D~%22(%22", None),
        (
            "POST",
            "/api/v2/silences",
            _silence("Past", endsAt="2001-01-01T00:00:00Z", startsAt="2000-01-01T00:00:00Z"),
        ),
    ],
)
def test_error_bodies_have_alertmanagers_shape(targets, method, path, body):
    shapes = []
    for target in targets:
        resp = requests.request(
            method, f"{target.url}{path}", json=body, timeout=10, headers=target.headers
        )
        assert resp.headers["Content-Type"].startswith("application/json"), (
            target.name,
            resp.status_code,
            resp.text[:300],
        )
        shapes.append((resp.status_code, type(resp.json()).__name__, resp.text[:300]))
    assert shapes[0][:2] == shapes[1][:2] == (400, "str"), shapes
