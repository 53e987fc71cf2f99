"""The Helm chart: rendered by the real Helm library, validated offline, and wired right."""

from __future__ import annotations

import base64
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from tests.deploy.helm_render import (
    CHART,
    NAMESPACE,
    REPO,
    RenderError,
    by_kind,
    documents,
    render,
    use_helm_home,
)
from tests.deploy.tools import ensure_module, kubernetes_validate_cli, npm_packages

CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
CASES = {"default": {}} | {
    p.name.removesuffix("-values.yaml"): yaml.safe_load(p.read_text()) for p in CI_VALUES
}
WORKLOADS = ("StatefulSet", "Deployment")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Every ci/*-values.yaml (and the defaults) rendered once for the whole module."""
    use_helm_home(tmp_path_factory.mktemp("helm-home"))
    yield {name: render(values) for name, values in CASES.items()}


def docs(rendered: dict[str, str], case: str) -> list[dict[str, Any]]:
    return documents(rendered[case])


def test_every_ci_values_file_renders_to_valid_kubernetes_1_30(
    rendered: dict[str, str], tmp_path: Path
) -> None:
    assert len(CI_VALUES) >= 8
    files = []
    for name, manifest in rendered.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(manifest)
        files.append(str(path))
    out = subprocess.run(
        [*kubernetes_validate_cli(), "--strict", "-k", "1.30.0", *files],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    checked = len(re.findall(r"passed for resource", out.stdout + out.stderr))
    assert checked >= 11 * len(rendered) // 2


def test_kubernetes_validate_catches_a_bad_manifest(
    rendered: dict[str, str], tmp_path: Path
) -> None:
    broken = rendered["default"].replace("containerPort:", "containerPorts:", 1)
    path = tmp_path / "broken.yaml"
    path.write_text(broken)
    out = subprocess.run(
        [*kubernetes_validate_cli(), "--strict", "-k", "1.30.0", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode != 0
    assert "did not validate" in out.stdout and "containerPort" in out.stdout


def test_default_install_has_the_three_services(rendered: dict[str, str]) -> None:
    d = docs(rendered, "default")
    assert set(by_kind(d, "StatefulSet")) == {"ss-stacksense-exporter"}
    assert set(by_kind(d, "Deployment")) == {"ss-stacksense-rules", "ss-stacksense-router"}
    assert set(by_kind(d, "ConfigMap")) == {
        f"ss-stacksense-{c}" for c in ("exporter", "rules", "router")
    }
    assert set(by_kind(d, "PersistentVolumeClaim")) == {
        "ss-stacksense-rules",
        "ss-stacksense-router",
    }
    assert "ss-stacksense" in by_kind(d, "ServiceAccount")
    # Optional features are off by default.
    assert not {"ServiceMonitor", "PrometheusRule", "ScrapeConfig"} & {x["kind"] for x in d}
    assert not [c for c in by_kind(d, "ConfigMap") if "dashboard" in c]


@pytest.mark.parametrize("case", list(CASES))
def test_workloads_are_hardened_and_roll_on_config_change(
    rendered: dict[str, str], case: str
) -> None:
    for workload in [x for x in docs(rendered, case) if x["kind"] in WORKLOADS]:
        name = workload["metadata"]["name"]
        template = workload["spec"]["template"]
        pod = template["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["automountServiceAccountToken"] is False, name
        assert pod["serviceAccountName"] == "ss-stacksense"
        for container in pod["containers"] + pod.get("initContainers", []):
            sc = container["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["capabilities"]["drop"] == ["ALL"], name
            if case != "resources":
                assert "resources" not in container, f"{name}: no default resources"
        assert re.fullmatch(
            r"[0-9a-f]{64}", template["metadata"]["annotations"]["checksum/config"]
        ), name
        selector = workload["spec"]["selector"]["matchLabels"]
        assert selector.items() <= template["metadata"]["labels"].items()
        assert selector["app.kubernetes.io/component"] in name


def _configmap(d: list[dict[str, Any]], component: str) -> dict[str, str]:
    data: dict[str, str] = by_kind(d, "ConfigMap")[f"ss-stacksense-{component}"]["data"]
    return data


def _workload(d: list[dict[str, Any]], component: str) -> dict[str, Any]:
    (w,) = [
        x
        for x in d
        if x["kind"] in WORKLOADS and x["metadata"]["name"] == f"ss-stacksense-{component}"
    ]
    return w


def _localize(text: str, tmp: Path) -> Path:
    """Write a rendered config with its in-pod paths under tmp, creating the files they name."""
    for path in set(re.findall(r"/etc/stacksense/[\w/.-]+", text)):
        local = tmp / path.lstrip("/")
        local.parent.mkdir(parents=True, exist_ok=True)
        if not local.exists():
            # URL-valued secret files must hold a URL for the router to accept them.
            url = "url" in local.name
            local.write_text("https://hooks.example.com/x\n" if url else "placeholder\n")
    out = tmp / f"config-{abs(hash(text))}.yml"
    out.write_text(text.replace("/etc/stacksense/", f"{tmp}/etc/stacksense/"))
    return out


@pytest.mark.parametrize("case", list(CASES))
def test_rendered_configs_pass_the_services_own_validation(
    rendered: dict[str, str], case: str, tmp_path: Path
) -> None:
    from alert_router.config import load_config as load_router
    from exporter.config import load_inventory
    from rules.conditions import load_conditions
    from rules.config import load_config as load_rules

    d = docs(rendered, case)
    inventory = load_inventory(_localize(_configmap(d, "exporter")["servers.yml"], tmp_path))
    assert str(inventory.known_hosts) == "/var/lib/stacksense/known_hosts"
    rules_data = _configmap(d, "rules")
    if "conditions.yml" in rules_data:
        (tmp_path / "etc/stacksense/config").mkdir(parents=True, exist_ok=True)
        (tmp_path / "etc/stacksense/config/conditions.yml").write_text(rules_data["conditions.yml"])
    rules = load_rules(_localize(rules_data["rules.yml"], tmp_path))
    assert rules.listen_address == "0.0.0.0:9817"
    assert str(rules.state_file).startswith("/var/lib/stacksense/")
    assert [r.url for r in rules.receivers] == ["http://ss-stacksense-router:9818"]
    if rules.conditions_file is not None:
        conditions = load_conditions(rules.conditions_file, include_defaults=True)
        assert "HighLoad" in {c.alert for c in conditions}
    router = load_router(_localize(_configmap(d, "router")["router.yml"], tmp_path))
    if case == "router-postgres":
        assert router.storage_url == CASES[case]["router"]["postgres"]["url"]
        # read from the mounted Secret file
        assert router.storage_password is not None
        assert router.storage_password.reveal() == "placeholder"
    else:
        assert router.storage_path == "/var/lib/stacksense/router.db"
    assert router.auth.tokens, "writes must be authenticated"


def test_config_paths_are_mounted(rendered: dict[str, str]) -> None:
    d = docs(rendered, "notifications")
    for component, flag in [
        ("exporter", "--config.file=/etc/stacksense/config/servers.yml"),
        ("rules", "/etc/stacksense/config/rules.yml"),
        ("router", "/etc/stacksense/config/router.yml"),
    ]:
        pod = _workload(d, component)["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert flag in container["args"]
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert mounts["/etc/stacksense/config"] == "config"
        assert mounts["/var/lib/stacksense"] == "data"
        assert mounts["/tmp"] == "tmp"  # the only other writable path
    router_yml = yaml.safe_load(_configmap(d, "router")["router.yml"])
    router_pod = _workload(d, "router")["spec"]["template"]["spec"]
    mounted = {m["mountPath"] for m in router_pod["containers"][0]["volumeMounts"]}
    assert router_yml["auth"]["tokens_file"].rsplit("/", 1)[0] in mounted
    assert router_yml["global"]["smtp_auth_password_file"].startswith(
        "/etc/stacksense/secrets/router/"
    )


def test_secrets_stay_in_secrets(rendered: dict[str, str]) -> None:
    d = docs(rendered, "notifications")
    values = CASES["notifications"]["router"]["secrets"]
    secret = by_kind(d, "Secret")["ss-stacksense-router"]["data"]
    assert base64.b64decode(secret["smtp-password"]).decode() == values["smtpPassword"]
    assert base64.b64decode(secret["slack-api-url"]).decode() == values["slackApiUrl"]
    assert base64.b64decode(secret["api-token"]).decode() == values["apiToken"]
    for doc in d:
        if doc["kind"] != "Secret":
            text = json.dumps(doc)
            for value in values.values():
                assert value not in text, f"{doc['kind']} {doc['metadata']['name']} leaks"


def test_a_token_is_generated_when_none_is_given(rendered: dict[str, str]) -> None:
    secret = by_kind(docs(rendered, "default"), "Secret")["ss-stacksense-router"]["data"]
    assert len(base64.b64decode(secret["api-token"])) == 40


def test_existing_secrets_replace_the_charts(rendered: dict[str, str]) -> None:
    d = docs(rendered, "existing-secrets")
    assert "Secret" not in {x["kind"] for x in d}
    volumes = {
        v["name"]: v for v in _workload(d, "exporter")["spec"]["template"]["spec"]["volumes"]
    }
    assert volumes["ssh"]["secret"]["secretName"] == "fleet-ssh-keys"
    for component in ("router", "rules"):
        pod_volumes = _workload(d, component)["spec"]["template"]["spec"]["volumes"]
        names = {v["secret"]["secretName"] for v in pod_volumes if "secret" in v}
        assert names == {"stacksense-router-secrets"}, component


def test_ssh_keys_become_a_secret_mounted_for_the_exporter(rendered: dict[str, str]) -> None:
    d = docs(rendered, "inventory")
    key = CASES["inventory"]["exporter"]["sshKeys"]["id_ed25519"]
    secret = by_kind(d, "Secret")["ss-stacksense-exporter"]
    assert base64.b64decode(secret["data"]["id_ed25519"]).decode() == key
    pod = _workload(d, "exporter")["spec"]["template"]["spec"]
    mounts = {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    assert mounts["ssh"] == "/etc/stacksense/ssh"
    assert "10.0.0.11 ssh-ed25519" in _configmap(d, "exporter")["known_hosts"]
    # Pins are writable: the init container seeds known_hosts onto the data volume.
    (init,) = pod["initContainers"]
    assert "/var/lib/stacksense/known_hosts" in " ".join(init["args"])


def test_checksum_changes_with_the_config(rendered: dict[str, str]) -> None:
    def checksum(case: str, component: str) -> str:
        w = _workload(docs(rendered, case), component)
        value: str = w["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
        return value

    assert checksum("default", "exporter") != checksum("inventory", "exporter")
    assert checksum("default", "rules") != checksum("conditions", "rules")
    assert checksum("default", "router") == checksum("no-persistence", "router")


def test_sharding_sends_each_server_to_a_stable_replica(rendered: dict[str, str]) -> None:
    d = docs(rendered, "sharding")
    sts = _workload(d, "exporter")
    assert sts["spec"]["replicas"] == 3
    assert sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    headless = by_kind(d, "Service")[sts["spec"]["serviceName"]]
    assert headless["spec"]["clusterIP"] == "None"
    (scrape,) = by_kind(d, "ScrapeConfig").values()
    spec = scrape["spec"]
    assert spec["metricsPath"] == "/probe" and spec["params"] == {"module": ["default"]}
    assert spec["httpSDConfigs"][0]["url"] == (
        f"http://ss-stacksense-exporter.{NAMESPACE}.svc:9816/sd"
    )
    hashmod = next(r for r in spec["relabelings"] if r.get("action") == "hashmod")
    assert hashmod["modulus"] == 3 and hashmod["sourceLabels"] == ["__param_target"]
    address = next(r for r in spec["relabelings"] if r.get("targetLabel") == "__address__")
    assert address["replacement"] == (
        f"ss-stacksense-exporter-${{1}}.ss-stacksense-exporter-headless.{NAMESPACE}.svc:9816"
    )
    assert scrape["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_service_monitors_name_the_jobs_the_rule_engine_expects(rendered: dict[str, str]) -> None:
    d = docs(rendered, "servicemonitor")
    monitors = by_kind(d, "ServiceMonitor")
    assert len(monitors) == 3
    services = by_kind(d, "Service")
    for monitor in monitors.values():
        selector = monitor["spec"]["selector"]["matchLabels"]
        matching = [
            s for s in services.values() if selector.items() <= s["metadata"]["labels"].items()
        ]
        assert len(matching) == 1, "exactly one Service (not the headless one) per monitor"
        label = monitor["spec"]["jobLabel"]
        assert matching[0]["metadata"]["labels"][label] == (
            "stacksense-" + selector["app.kubernetes.io/component"]
        )


def test_prometheus_rule_is_the_compose_rules_file(rendered: dict[str, str]) -> None:
    (rule,) = by_kind(docs(rendered, "prometheusrule"), "PrometheusRule").values()
    shipped = yaml.safe_load(
        (REPO / "docker/prometheus/rules.d/stacksense-pipeline.yml").read_text()
    )
    assert rule["spec"]["groups"] == shipped["groups"]


def test_dashboards_are_configmaps_for_the_grafana_sidecar(rendered: dict[str, str]) -> None:
    maps = {
        n: m
        for n, m in by_kind(docs(rendered, "dashboards"), "ConfigMap").items()
        if "dashboard" in n
    }
    # overview, server, pipeline and Node Exporter Full
    assert len(maps) == 4
    for cm in maps.values():
        assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert cm["metadata"]["annotations"]["grafana_folder"] == "StackSense"
        ((file, content),) = cm["data"].items()
        assert json.loads(content) == json.loads((REPO / "dashboards" / file).read_text())


def test_unknown_values_are_rejected_with_their_path() -> None:
    with pytest.raises(RenderError, match=r"/exporter.*replicaz"):
        render({"exporter": {"replicaz": 2}})


def test_router_refuses_replicas_it_cannot_serve() -> None:
    with pytest.raises(RenderError, match=r"router.*replicas.*postgres"):
        render({"router": {"replicas": 2}})


def test_router_replicas_share_a_postgres_store(rendered: dict[str, str]) -> None:
    d = docs(rendered, "router-postgres")
    router = _workload(d, "router")
    assert router["spec"]["replicas"] == 3
    assert router["spec"]["strategy"]["type"] == "RollingUpdate"
    volumes = {v["name"]: v for v in router["spec"]["template"]["spec"]["volumes"]}
    assert volumes["data"] == {"name": "data", "emptyDir": {}}
    assert "ss-stacksense-router" not in by_kind(d, "PersistentVolumeClaim")
    router_yml = yaml.safe_load(_configmap(d, "router")["router.yml"])
    assert router_yml["storage"] == {
        "url": "postgresql://stacksense@postgres.monitoring.svc:5432/stacksense",
        "password_file": "/etc/stacksense/secrets/router/postgres-password",
    }
    secret = by_kind(d, "Secret")["ss-stacksense-router"]["data"]
    assert base64.b64decode(secret["postgres-password"]).decode() == "ci-postgres-password"
    for doc in d:
        if doc["kind"] != "Secret":
            assert "ci-postgres-password" not in json.dumps(doc), doc["metadata"]["name"]
    # The default install keeps one replica on SQLite, its volume and Recreate.
    default = _workload(docs(rendered, "default"), "router")
    assert default["spec"]["strategy"]["type"] == "Recreate"
    assert "ss-stacksense-router" in by_kind(docs(rendered, "default"), "PersistentVolumeClaim")


def undocumented_values(text: str) -> list[str]:
    """helm-docs style: each value needs a `# --` comment (a documented block covers its body)."""
    undocumented: list[str] = []
    documented_indent: int | None = None
    comment_block: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if not stripped:
            comment_block = []
            continue
        if stripped.startswith("#"):
            comment_block.append(stripped)
            continue
        if documented_indent is not None and indent > documented_indent:
            continue
        documented_indent = None
        match = re.match(r"^(\s*)([\w.-]+):(.*)$", line)
        if match and not stripped.startswith("-"):
            has_doc = any(c.startswith("# --") for c in comment_block)
            inline_value = match.group(3).strip() not in ("", "|")
            if has_doc:
                documented_indent = indent
            elif inline_value:
                undocumented.append(f"line {number}: {stripped}")
        comment_block = []
    return undocumented


def test_every_value_is_documented() -> None:
    missing = undocumented_values((CHART / "values.yaml").read_text())
    assert not missing, "values without a `# --` comment:\n" + "\n".join(missing)
    sample = "a:\n  # -- documented\n  b: 1\n  # plain comment\n  c: 2\n"
    assert undocumented_values(sample) == ["line 5: c: 2"]


def test_values_match_the_schema() -> None:
    jsonschema = ensure_module("jsonschema", "jsonschema")
    schema = json.loads((CHART / "values.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    for values in [yaml.safe_load((CHART / "values.yaml").read_text()), *CASES.values()]:
        jsonschema.validate(values, schema)


def _snake(key: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", lambda m: "_" + m.group(1).lower(), key)


def test_sharding_relabeling_works_in_a_real_prometheus(
    rendered: dict[str, str], tmp_path: Path
) -> None:
    """The ScrapeConfig's relabeling, as plain Prometheus config, spreads servers over replicas."""
    from tests.deploy.fake_stack import fake_stack
    from tests.peers.prometheus import prometheus
    from tests.peers.util import wait_for

    (scrape,) = by_kind(docs(rendered, "sharding"), "ScrapeConfig").values()
    spec = scrape["spec"]
    servers = [f"host{i:02d}" for i in range(12)]
    with fake_stack(servers) as fake:
        job = {
            "job_name": spec["jobName"],
            "metrics_path": spec["metricsPath"],
            "params": spec["params"],
            "scrape_interval": "1m",
            "scrape_timeout": "30s",
            "http_sd_configs": [{"url": f"{fake.url}/sd", "refresh_interval": "1s"}],
            "relabel_configs": [{_snake(k): v for k, v in r.items()} for r in spec["relabelings"]],
        }
        with prometheus(tmp_path, {"scrape_configs": [job]}) as prom:

            def targets() -> list[dict[str, Any]] | None:
                body = requests.get(f"{prom.url}/api/v1/targets", timeout=5).json()
                active: list[dict[str, Any]] = body["data"]["activeTargets"]
                return active if len(active) == len(servers) else None

            active = wait_for(targets, timeout=30, what="all servers discovered")
    replicas = set()
    for target in active:
        name = target["labels"]["instance"]
        assert target["labels"]["server"] == name
        host, _, rest = target["scrapeUrl"].removeprefix("http://").partition("/")
        match = re.fullmatch(
            rf"ss-stacksense-exporter-([0-2])\.ss-stacksense-exporter-headless\.{NAMESPACE}"
            r"\.svc:9816",
            host,
        )
        assert match, host
        replicas.add(match.group(1))
        assert rest == f"probe?module=default&target={name}"
    assert replicas == {"0", "1", "2"}, "12 servers should use every replica"


PROMETHEUS_OPERATOR_MODELS = "@kubernetes-models/prometheus-operator@6.0.0"
VALIDATE_CRDS = """
import { readFileSync } from "node:fs";
import * as v1 from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1";
import * as v1alpha1 from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1alpha1";
const models = { "monitoring.coreos.com/v1": v1, "monitoring.coreos.com/v1alpha1": v1alpha1 };
// One result per document: "" when valid, else the error.
const results = [];
for (const doc of JSON.parse(readFileSync(process.argv[2], "utf8"))) {
  const Model = models[doc.apiVersion]?.[doc.kind];
  if (!Model) { results.push(`${doc.kind} ${doc.apiVersion}: no schema`); continue; }
  try { new Model(doc).validate(); results.push(""); }
  catch (e) { results.push(`${doc.kind} ${doc.metadata.name}: ${e.message}`); }
}
console.log(JSON.stringify(results));
"""


def validate_crds(objects: list[dict[str, Any]], tmp: Path) -> list[str]:
    """Per object, "" or its error against prometheus-operator's CRD schemas."""
    root = npm_packages(PROMETHEUS_OPERATOR_MODELS)
    (root / "validate.mjs").write_text(VALIDATE_CRDS)
    docs_file = tmp / "crds.json"
    docs_file.write_text(json.dumps(objects))
    out = subprocess.run(
        ["node", str(root / "validate.mjs"), str(docs_file)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    errors: list[str] = json.loads(out.stdout)
    return errors


def test_prometheus_operator_objects_match_their_crd_schemas(
    rendered: dict[str, str], tmp_path: Path
) -> None:
    crds = [
        d
        for case in rendered
        for d in docs(rendered, case)
        if d["apiVersion"].startswith("monitoring.coreos.com/")
    ]
    assert {d["kind"] for d in crds} == {"ServiceMonitor", "PrometheusRule", "ScrapeConfig"}
    # The check bites: a hashmod modulus must be an integer (checked in the same node run).
    (scrape,) = [d for d in crds if d["kind"] == "ScrapeConfig"]
    broken = json.loads(json.dumps(scrape))
    for relabel in broken["spec"]["relabelings"]:
        if relabel.get("action") == "hashmod":
            relabel["modulus"] = "3"
    *results, broken_result = validate_crds([*crds, broken], tmp_path)
    assert [r for r in results if r] == []
    assert "modulus must be integer" in broken_result
