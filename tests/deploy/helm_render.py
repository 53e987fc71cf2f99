"""Render the Helm chart with the real Helm library (helm-sdkpy) against a fake API server."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import yaml

from tests.deploy.fake_kube import fake_kube
from tests.deploy.tools import ensure_module

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "stacksense"
NAMESPACE = "monitoring"
RELEASE = "ss"


class RenderError(Exception):
    """Helm refused the chart or the values; the message is Helm's own."""


def use_helm_home(home: Path) -> None:
    """Keep Helm's cache, config and data out of the user's home."""
    for var in ("HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"):
        os.environ[var] = str(home)


def render(values: dict[str, Any] | None = None, *, release: str = RELEASE) -> str:
    """The manifest `helm install` produces for `values` (raises RenderError)."""
    helm = ensure_module("helm_sdkpy", "helm-sdkpy==0.1.32", ignore_requires_python=True)
    with fake_kube() as kube:
        config = helm.Configuration(namespace=NAMESPACE, kubeconfig=kube.kubeconfig())
        try:
            result = asyncio.run(
                helm.Install(config).run(
                    release, str(CHART), values=values or None, wait=False, timeout=60
                )
            )
        except helm.HelmError as exc:
            raise RenderError(str(exc)) from None
    manifest: str = result["manifest"]
    return manifest


def documents(manifest: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(manifest) if d]


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}
