"""docker-compose.yml: valid for the real Compose binary, hardened, and wired to real configs."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.tools import compose_binary

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"
STACKSENSE = ("exporter", "rules", "router")


def compose(*args: str, file: Path = COMPOSE) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(compose_binary()), "-f", str(file), *args],
                          capture_output=True, text=True, timeout=60, cwd=file.parent)


@pytest.fixture(scope="module")
def resolved() -> dict[str, Any]:
    out = compose("config", "--format", "json")
    assert out.returncode == 0, out.stderr
    config: dict[str, Any] = json.loads(out.stdout)
    return config


def test_compose_validates() -> None:
    out = compose("config", "-q")
    assert out.returncode == 0, out.stderr


def test_compose_rejects_an_unknown_key(tmp_path: Path) -> None:
    # Proves the validator really checks: the same file with one typo must fail.
    broken = tmp_path / "docker-compose.yml"
    text = COMPOSE.read_text()
    assert "    hostname: demo-host" in text
    broken.write_text(text.replace("    hostname: demo-host", "    hostnme: demo-host"))
    out = compose("config", "-q", file=broken)
    assert out.returncode != 0
    assert "hostnme" in out.stderr


def test_the_whole_stack_is_there(resolved: dict[str, Any]) -> None:
    services = resolved["services"]
    assert {"prometheus", "grafana", "demo-host", "init", *STACKSENSE} <= set(services)
    assert services["exporter"]["command"][:2] == [
        "stacksense-exporter", "--config.file=/etc/stacksense/servers.yml"]
    assert services["rules"]["command"][:2] == ["stacksense-rules", "run"]
    assert services["router"]["command"][:2] == ["stacksense-router", "serve"]


def test_services_are_hardened(resolved: dict[str, Any]) -> None:
    for name in STACKSENSE:
        svc = resolved["services"][name]
        assert svc["user"] == "10001:10001", name
        assert svc["read_only"] is True, name
        assert svc["cap_drop"] == ["ALL"], name
        assert svc["depends_on"]["init"]["condition"] == "service_completed_successfully"
        assert svc["build"]["dockerfile"] == "docker/Dockerfile"
    for name, svc in resolved["services"].items():
        for port in svc.get("ports", []):
            # Published only on loopback: nothing here has authentication on reads.
            assert port["host_ip"] == "127.0.0.1", (name, port)


def test_bind_mounts_exist_in_the_repo(resolved: dict[str, Any]) -> None:
    binds = [(name, v) for name, svc in resolved["services"].items()
             for v in svc.get("volumes", []) if v["type"] == "bind"]
    assert binds
    for name, volume in binds:
        assert Path(volume["source"]).exists(), (name, volume["source"])
        assert volume.get("read_only") is True, (name, volume["target"])
    targets = {(n, v["target"]) for n, v in binds}
    assert ("prometheus", "/etc/prometheus/prometheus.yml") in targets
    assert ("grafana", "/etc/grafana/provisioning") in targets


def _mounted_config(resolved: dict[str, Any], service: str) -> Path:
    svc = resolved["services"][service]
    flag = next(a for a in svc["command"] if a.startswith("--config.file="))
    target = flag.split("=", 1)[1]
    (volume,) = [v for v in svc["volumes"] if v["target"] == target]
    return Path(volume["source"])


def _with_local_secrets(path: Path, tmp: Path) -> Path:
    """A copy of a config whose /secrets/ paths point at files made here."""
    (tmp / "router-token").write_text("token\n")
    (tmp / "demo_ed25519").write_text("not a key; only the path is checked\n")
    copy = tmp / path.name
    copy.write_text(path.read_text().replace("/secrets/", f"{tmp}/"))
    return copy


def test_demo_configs_load_with_the_services_own_validators(
        resolved: dict[str, Any], tmp_path: Path) -> None:
    from alert_router.config import load_config as load_router
    from exporter.config import load_inventory
    from rules.config import load_config as load_rules

    inventory = load_inventory(_with_local_secrets(_mounted_config(resolved, "exporter"),
                                                   tmp_path))
    assert set(inventory.servers) == {"demo-host"}
    assert inventory.servers["demo-host"].host == "demo-host"  # the compose service name
    rules = load_rules(_with_local_secrets(_mounted_config(resolved, "rules"), tmp_path))
    assert [r.url for r in rules.receivers] == ["http://router:9818"]
    assert rules.prometheus_url == "http://prometheus:9090"
    router = load_router(_with_local_secrets(_mounted_config(resolved, "router"), tmp_path))
    assert router.auth.tokens == ("token",)
    assert router.storage_path.startswith("/var/lib/stacksense/")


def test_dockerfile_builds_a_non_root_python_311_image() -> None:
    text = (REPO / "docker" / "Dockerfile").read_text()
    froms = [line.split()[1] for line in text.splitlines() if line.startswith("FROM ")]
    assert froms and all(f == "python:3.11-slim" for f in froms)
    users = [line.split()[1] for line in text.splitlines() if line.startswith("USER ")]
    assert users[-1] == "10001:10001"
    for line in text.splitlines():
        if line.startswith("COPY ") and "--from" not in line:
            for source in line.split()[1:-1]:
                assert (REPO / source).exists(), source
    # The .dockerignore must keep the packages in the build context.
    kept = (REPO / "docker" / "Dockerfile.dockerignore").read_text()
    for package in ("exporter/", "rules/", "alert_router/", "pyproject.toml"):
        assert f"!{package}" in kept
