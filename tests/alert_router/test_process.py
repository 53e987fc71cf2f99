"""The router as gunicorn runs it with two workers: one dispatcher, reloads reach every worker."""

from __future__ import annotations

import pytest
import requests
import yaml

from tests.peers.router import router
from tests.peers.util import wait_for
from tests.peers.webhook import webhook_receiver

pytestmark = pytest.mark.slow


def test_two_workers_share_one_store_and_follow_reloads(tmp_path):
    with webhook_receiver() as hook:
        config = {
            "route": {"receiver": "hook", "group_by": ["..."], "group_wait": "0s"},
            "receivers": [{"name": "hook", "webhook_configs": [{"url": hook.url}]}],
        }
        with router(tmp_path, config, workers=2) as proc:
            # Fresh connections spread over both workers; each alert is delivered once.
            for i in range(20):
                assert (
                    requests.post(
                        f"{proc.url}/api/v2/alerts",
                        headers=proc.auth,
                        timeout=10,
                        json=[{"labels": {"alertname": "W", "n": str(i)}}],
                    ).status_code
                    == 200
                )
            wait_for(lambda: len(hook.alerts()) >= 20, timeout=30, what="20 deliveries")
            assert sorted(int(a["labels"]["n"]) for a in hook.alerts()) == list(range(20))
            # Each delivery is logged at the default level (info), with its trace ids.
            wait_for(
                lambda: proc.log().count(" sent trace=") == 20, timeout=10, what="20 log lines"
            )

            written = yaml.safe_load(proc.config_path.read_text())
            written["receivers"].append({"name": "extra", "webhook_configs": [{"url": hook.url}]})
            proc.config_path.write_text(yaml.safe_dump(written))
            assert (
                requests.post(f"{proc.url}/-/reload", headers=proc.auth, timeout=10).status_code
                == 200
            )

            def every_worker_has_extra() -> bool:
                names = [
                    {
                        r["name"]
                        for r in requests.get(
                            f"{proc.url}/api/v2/receivers",
                            timeout=5,
                            headers={"Connection": "close"},
                        ).json()
                    }
                    for _ in range(10)
                ]
                return all("extra" in n for n in names)

            wait_for(every_worker_has_extra, timeout=10, what="reload seen by both workers")

            written["route"]["recever"] = "typo"
            proc.config_path.write_text(yaml.safe_dump(written))
            resp = requests.post(f"{proc.url}/-/reload", headers=proc.auth, timeout=10)
            assert resp.status_code == 500
            assert "route.recever: unknown key" in resp.json()["error"]
            metrics = requests.get(f"{proc.url}/metrics", timeout=5).text
            assert "stacksense_router_config_last_reload_successful" in metrics
            # The previous config stays in force everywhere, including in a worker that had
            # not yet followed the first reload when the file broke.
            wait_for(every_worker_has_extra, timeout=10, what="extra kept by both workers")
