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
    return subprocess.run(
        [str(compose_binary()), "-f", str(file), *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=file.parent,
    )


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
    assert services["exporter"]["command"][0] == "stacksense-exporter"
    assert services["rules"]["command"][:2] == ["stacksense-rules", "run"]
    assert services["router"]["command"][0] == "stacksense-router"
    assert "serve" in services["router"]["command"]


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
    binds = [
        (name, v)
        for name, svc in resolved["services"].items()
        for v in svc.get("volumes", [])
        if v["type"] == "bind"
    ]
    assert binds
    for name, volume in binds:
        assert Path(volume["source"]).exists(), (name, volume["source"])
        assert volume.get("read_only") is True, (name, volume["target"])
    targets = {(n, v["target"]) for n, v in binds}
    assert ("prometheus", "/etc/prometheus/prometheus.yml") in targets
    assert ("grafana", "/etc/grafana/provisioning") in targets


def config_argument(command: list[str]) -> tuple[int, str]:
    """Where the config path is in a service's command line, and the path."""
    for i, arg in enumerate(command):
        if arg.startswith("--config.file="):
            return i, arg.split("=", 1)[1]
        if arg == "--config":
            return i + 1, command[i + 1]
    raise AssertionError(f"no config flag in {command}")


def check_command(service: str, command: list[str], config: Path) -> list[str]:
    """The service's own config check, with the same flags as the compose command line."""
    index, _ = config_argument(command)
    argv = list(command)
    argv[index] = f"--config.file={config}" if argv[index].startswith("--config.") else str(config)
    if service == "exporter":
        return [*argv[1:], "--check-config"]
    if service == "rules":
        return ["check-config", *argv[2:]]
    return argv[1 : argv.index("serve")] + ["check-config"]


def localized_copy(resolved: dict[str, Any], service: str, tmp: Path) -> Path:
    """A copy of the config mounted for `service`, its /secrets/ paths pointing at tmp."""
    svc = resolved["services"][service]
    _, target = config_argument(svc["command"])
    (volume,) = [v for v in svc["volumes"] if v["target"] == target]
    (tmp / "router-token").write_text("token\n")
    # --check-config parses the key (a missing or garbage key is an error), so a real one.
    if not (tmp / "demo_ed25519").exists():
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp / "demo_ed25519")],
            check=True,
        )
    copy = tmp / f"{service}.yml"
    copy.write_text(Path(volume["source"]).read_text().replace("/secrets/", f"{tmp}/"))
    return copy


@pytest.mark.parametrize("service", STACKSENSE)
def test_services_accept_their_command_line_and_config(
    resolved: dict[str, Any], service: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each service's own CLI checks the mounted config, with the compose command's flags."""
    from alert_router.cli import main as router_main
    from exporter.main import main as exporter_main
    from rules.cli import main as rules_main

    mains = {"exporter": exporter_main, "rules": rules_main, "router": router_main}
    config = localized_copy(resolved, service, tmp_path)
    argv = check_command(service, resolved["services"][service]["command"], config)
    code = mains[service](argv)
    out = capsys.readouterr()
    assert code == 0, f"{service} {argv}: {out.err}"


def test_demo_configs_wire_the_services_together(resolved: dict[str, Any], tmp_path: Path) -> None:
    from alert_router.config import load_config as load_router
    from exporter.config import load_inventory
    from rules.config import load_config as load_rules

    inventory = load_inventory(localized_copy(resolved, "exporter", tmp_path))
    assert set(inventory.servers) == {"demo-host"}
    assert inventory.servers["demo-host"].host == "demo-host"  # the compose service name
    rules = load_rules(localized_copy(resolved, "rules", tmp_path))
    assert [r.url for r in rules.receivers] == ["http://router:9818"]
    assert rules.prometheus_url == "http://prometheus:9090"
    router = load_router(localized_copy(resolved, "router", tmp_path))
    assert [t.reveal() for t in router.auth.tokens] == ["token"]
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
    for package in ("exporter/", "rules/", "alert_router/", "stacksense_common/", "pyproject.toml"):
        assert f"!{package}" in kept
