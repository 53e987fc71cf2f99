"""`make run`: the whole stack on this machine, monitoring the local host by default.

Starts, in the foreground until Ctrl-C: the exporter (embedded mode, or
`STACKSENSE_INVENTORY=servers.yml` for SSH hosts), Prometheus scraping it through
/sd and the multi-target pattern, the rule engine and the alert router (with
Prometheus' alerting pointed at the router). State lives under `.run/`.
Ports: exporter 9816, rules 9817, router 9818, Prometheus 9090 (override with
STACKSENSE_*_PORT variables).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests
import yaml

ROOT = Path(__file__).resolve().parent.parent
RUN = Path(os.environ.get("STACKSENSE_RUN_DIR", ROOT / ".run"))
BIN = Path(sys.executable).parent
HOST = "127.0.0.1"


def port(name: str, default: int) -> int:
    return int(os.environ.get(f"STACKSENSE_{name}_PORT", default))


EXPORTER, RULES, ROUTER, PROMETHEUS = (port("EXPORTER", 9816), port("RULES", 9817),
                                       port("ROUTER", 9818), port("PROMETHEUS", 9090))


def router_token() -> str:
    """One bearer token for writes to the router, kept under .run/ (mode 0600)."""
    path = RUN / "router-token"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(24))
        path.chmod(0o600)
    return path.read_text().strip()


def prometheus_config(token_file: Path) -> dict[str, object]:
    exporter = f"{HOST}:{EXPORTER}"
    return {
        "global": {"scrape_interval": "15s", "scrape_timeout": "10s",
                   "evaluation_interval": "15s"},
        "alerting": {"alertmanagers": [{
            "api_version": "v2",
            "static_configs": [{"targets": [f"{HOST}:{ROUTER}"]}],
            "authorization": {"credentials_file": str(token_file)},
        }]},
        "scrape_configs": [
            {
                "job_name": "stacksense-probe",
                "metrics_path": "/probe",
                "http_sd_configs": [{"url": f"http://{exporter}/sd"}],
                "relabel_configs": [
                    {"source_labels": ["__address__"], "target_label": "__param_target"},
                    {"source_labels": ["__param_target"], "target_label": "instance"},
                    {"target_label": "__address__", "replacement": exporter},
                ],
            },
            {"job_name": "stacksense-exporter", "static_configs": [{"targets": [exporter]}]},
            {"job_name": "stacksense-rules",
             "static_configs": [{"targets": [f"{HOST}:{RULES}"]}]},
            {"job_name": "stacksense-router",
             "static_configs": [{"targets": [f"{HOST}:{ROUTER}"]}]},
            {"job_name": "prometheus",
             "static_configs": [{"targets": [f"{HOST}:{PROMETHEUS}"]}]},
        ],
    }


def write_configs(token: str) -> dict[str, Path]:
    token_file = RUN / "router-token"
    paths = {"prometheus": RUN / "prometheus.yml", "rules": RUN / "rules.yml",
             "router": RUN / "router.yml"}
    paths["prometheus"].write_text(yaml.safe_dump(prometheus_config(token_file)))
    if not paths["rules"].exists():
        paths["rules"].write_text(yaml.safe_dump({
            "prometheus": {"url": f"http://{HOST}:{PROMETHEUS}"},
            "receivers": [{"url": f"http://{HOST}:{ROUTER}",
                           "bearer_token_file": str(token_file)}],
            "state_file": str(RUN / "rules-state.json"),
            "external_url": f"http://{HOST}:{RULES}",
        }))
    if not paths["router"].exists():
        paths["router"].write_text(yaml.safe_dump({
            "auth": {"tokens_file": str(token_file)},
            "storage": {"path": str(RUN / "router.db")},
            # No integration configured: alerts, groups and incidents are recorded and
            # shown on the router's page; add email_configs/slack_configs to deliver.
            "route": {"receiver": "default", "group_by": ["alertname", "server"]},
            "receivers": [{"name": "default"}],
        }))
    return paths


def commands(paths: dict[str, Path]) -> list[tuple[str, list[str], str]]:
    """(name, argv, readiness URL) for every service."""
    inventory = os.environ.get("STACKSENSE_INVENTORY")
    exporter = [str(BIN / "stacksense-exporter"), f"--web.listen-address={HOST}:{EXPORTER}"]
    if inventory:
        exporter.append(f"--config.file={inventory}")
    prometheus = shutil.which("prometheus") or "/usr/bin/prometheus"
    return [
        ("exporter", exporter, f"http://{HOST}:{EXPORTER}/-/ready"),
        ("router", [str(BIN / "stacksense-router"), "-c", str(paths["router"]), "serve",
                    "--listen", f"{HOST}:{ROUTER}"], f"http://{HOST}:{ROUTER}/-/ready"),
        ("prometheus", [prometheus, f"--config.file={paths['prometheus']}",
                        f"--storage.tsdb.path={RUN / 'prometheus-data'}",
                        f"--web.listen-address={HOST}:{PROMETHEUS}", "--web.enable-lifecycle"],
         f"http://{HOST}:{PROMETHEUS}/-/ready"),
        ("rules", [str(BIN / "stacksense-rules"), "run", f"--config.file={paths['rules']}",
                   f"--web.listen-address={HOST}:{RULES}"], f"http://{HOST}:{RULES}/-/ready"),
    ]


def wait_ready(name: str, proc: subprocess.Popen[bytes], url: str, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            if requests.get(url, timeout=1).ok:
                return True
        except requests.RequestException:
            pass
        time.sleep(0.2)
    return False


def main() -> int:
    RUN.mkdir(exist_ok=True)
    paths = write_configs(router_token())
    procs: list[tuple[str, subprocess.Popen[bytes]]] = []
    stopping = False

    def stop_all(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop_all)
    signal.signal(signal.SIGTERM, stop_all)
    try:
        for name, argv, ready in commands(paths):
            log = open(RUN / f"{name}.log", "ab")  # noqa: SIM115 - lives as long as the process
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
            procs.append((name, proc))
            if wait_ready(name, proc, ready):
                print(f"  {name:<11} ready   {ready.rsplit('/-/', 1)[0]}")
            else:
                print(f"  {name:<11} FAILED  see {RUN / (name + '.log')}", file=sys.stderr)
        print(f"\nStackSense is running (logs and state in {RUN}). Ctrl-C stops it.")
        print(f"  Prometheus:   http://{HOST}:{PROMETHEUS}/graph?g0.expr=node_load1")
        print(f"  Alert router: http://{HOST}:{ROUTER}/  (write token in {RUN / 'router-token'})")
        print(f"  Rule engine:  http://{HOST}:{RULES}/metrics")
        watched = list(procs)
        while not stopping and watched:
            for name, proc in list(watched):
                if proc.poll() is not None:
                    print(f"  {name} exited with {proc.returncode}; see {RUN / (name + '.log')}",
                          file=sys.stderr)
                    watched.remove((name, proc))
            time.sleep(0.5)
    finally:
        for _, proc in reversed(procs):
            if proc.poll() is None:
                proc.terminate()
        for _, proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
