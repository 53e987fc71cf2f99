"""The rule engine's configuration file (YAML), validated strictly.

Defaults first, the file overlaid; every unknown key is an error naming its
path (e.g. `status.offline_afer: unknown key`). Relative paths are taken
relative to the configuration file. Secrets (bearer tokens) are only ever
read from files and never appear in `repr` or logs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rules import validate as v
from rules.validate import ConfigError, read_yaml

ANOMALY_METRICS = ("cpu", "memory", "disk", "network")

__all__ = ["ConfigError", "EngineConfig", "Receiver", "load_config", "parse_config"]


@dataclass(frozen=True)
class Receiver:
    """An Alertmanager-compatible receiver of `POST /api/v2/alerts`."""

    url: str
    bearer_token_file: Path | None = None
    timeout_seconds: float = 5.0

    def bearer_token(self) -> str | None:
        """Read the token (stripped) from its file at send time, so rotation needs no reload."""
        if self.bearer_token_file is None:
            return None
        return self.bearer_token_file.read_text().strip()


@dataclass(frozen=True)
class EngineConfig:
    """Everything the engine needs; built by `parse_config`."""

    prometheus_url: str = "http://127.0.0.1:9090"
    prometheus_timeout_seconds: float = 10.0
    prometheus_retries: int = 2
    prometheus_bearer_token_file: Path | None = None
    exporter_job: str = "stacksense-exporter"
    prometheus_job: str = "prometheus"
    interval_seconds: float = 15.0
    listen_address: str = "0.0.0.0:9817"
    external_url: str = "http://127.0.0.1:9817"
    state_file: Path = Path("stacksense-rules-state.json")
    offline_after_seconds: float = 60.0
    grace_offline_after_seconds: float = 600.0
    grace_period_seconds: float = 600.0
    outage_threshold_seconds: float = 300.0
    # A server never reached raises ServerUnreachable (warning) after this long.
    pending_timeout_seconds: float = 300.0
    # The engine's own pipeline alerts (exporter down, Prometheus unreachable) fire after
    # the problem has lasted this long: past a restart, well within 3 minutes.
    pipeline_alert_after_seconds: float = 60.0
    health_yellow_at: float = 0.70
    health_red_at: float = 0.85
    conditions_file: Path | None = None
    include_default_conditions: bool = True
    anomalies_enabled: bool = True
    anomaly_metrics: tuple[str, ...] = ANOMALY_METRICS
    # Detector overrides for the engine. A 288-slot season ring (5-minute resolution)
    # keeps memory at ~2.4 KB per series instead of ~9 KB at 15 s sampling; on
    # 5-minute data (NAB) it is exactly the detector's default behaviour.
    detector_params: dict[str, Any] = field(
        default_factory=lambda: {"season_max_slots": 288})
    anomaly_save_interval_seconds: float = 600.0
    resolved_resend_seconds: float = 900.0
    receivers: tuple[Receiver, ...] = field(default_factory=tuple)
    reload_token_file: Path | None = None


_TOP = {"prometheus", "interval", "listen_address", "external_url", "state_file", "status",
        "health", "conditions", "anomalies", "receivers", "web", "resolved_resend"}


def load_config(path: Path | str | None) -> EngineConfig:
    """Read and validate a configuration file; None gives the defaults."""
    if path is None:
        return EngineConfig()
    path = Path(path)
    raw = read_yaml(path)
    try:
        return parse_config(raw, base_dir=path.parent)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def parse_config(raw: Any, *, base_dir: Path = Path(".")) -> EngineConfig:
    """Validate a parsed YAML document and build the config."""
    top = v.mapping(raw, "", _TOP)
    d = EngineConfig()
    out: dict[str, Any] = {}

    def rel(value: Any, where: str) -> Path:
        p = Path(v.string(value, where))
        return p if p.is_absolute() else base_dir / p

    prom = v.mapping(top.get("prometheus"), "prometheus",
                     {"url", "timeout", "retries", "bearer_token_file", "exporter_job",
                      "prometheus_job"})
    if "url" in prom:
        out["prometheus_url"] = _url(prom["url"], "prometheus.url")
    if "timeout" in prom:
        out["prometheus_timeout_seconds"] = _positive(prom["timeout"], "prometheus.timeout")
    if "retries" in prom:
        out["prometheus_retries"] = int(v.number(prom["retries"], "prometheus.retries",
                                                 minimum=0, maximum=10))
    if "bearer_token_file" in prom:
        out["prometheus_bearer_token_file"] = rel(prom["bearer_token_file"],
                                                  "prometheus.bearer_token_file")
    for key in ("exporter_job", "prometheus_job"):
        if key in prom:
            out[key] = v.string(prom[key], f"prometheus.{key}")
    if "interval" in top:
        out["interval_seconds"] = _positive(top["interval"], "interval")
    if "listen_address" in top:
        out["listen_address"] = _listen(top["listen_address"])
    if "external_url" in top:
        out["external_url"] = _url(top["external_url"], "external_url")
    if "state_file" in top:
        out["state_file"] = rel(top["state_file"], "state_file")
    if "resolved_resend" in top:
        out["resolved_resend_seconds"] = v.duration(top["resolved_resend"], "resolved_resend")

    status = v.mapping(top.get("status"), "status",
                       {"offline_after", "grace_offline_after", "grace_period",
                        "outage_threshold", "pending_timeout", "pipeline_alert_after"})
    for key in ("offline_after", "grace_offline_after", "grace_period", "outage_threshold",
                "pending_timeout", "pipeline_alert_after"):
        if key in status:
            out[f"{key}_seconds"] = _positive(status[key], f"status.{key}")
    offline = out.get("offline_after_seconds", d.offline_after_seconds)
    grace = out.get("grace_offline_after_seconds", d.grace_offline_after_seconds)
    if grace < offline:
        raise ConfigError(f"status.grace_offline_after: must be >= status.offline_after "
                          f"({offline:g}s), got {grace:g}s")

    health = v.mapping(top.get("health"), "health", {"yellow_at", "red_at"})
    for key in ("yellow_at", "red_at"):
        if key in health:
            out[f"health_{key}"] = v.number(health[key], f"health.{key}", minimum=0, maximum=1)
    if out.get("health_yellow_at", d.health_yellow_at) > out.get("health_red_at", d.health_red_at):
        raise ConfigError("health.yellow_at: must be <= health.red_at")

    cond = v.mapping(top.get("conditions"), "conditions", {"file", "include_defaults"})
    if "file" in cond:
        out["conditions_file"] = rel(cond["file"], "conditions.file")
    if "include_defaults" in cond:
        out["include_default_conditions"] = v.boolean(cond["include_defaults"],
                                                      "conditions.include_defaults")

    anomalies = v.mapping(top.get("anomalies"), "anomalies",
                          {"enabled", "metrics", "detector", "save_interval"})
    if "save_interval" in anomalies:
        out["anomaly_save_interval_seconds"] = _positive(anomalies["save_interval"],
                                                         "anomalies.save_interval")
    if "detector" in anomalies:
        out["detector_params"] = _detector(anomalies["detector"])
    if "enabled" in anomalies:
        out["anomalies_enabled"] = v.boolean(anomalies["enabled"], "anomalies.enabled")
    if "metrics" in anomalies:
        metrics = anomalies["metrics"]
        if not isinstance(metrics, list):
            raise ConfigError("anomalies.metrics: expected a list")
        for i, name in enumerate(metrics):
            if name not in ANOMALY_METRICS:
                raise ConfigError(f"anomalies.metrics[{i}]: unknown metric {name!r} "
                                  f"(known: {', '.join(ANOMALY_METRICS)})")
        out["anomaly_metrics"] = tuple(metrics)

    receivers = top.get("receivers", [])
    if not isinstance(receivers, list):
        raise ConfigError("receivers: expected a list")
    parsed: list[Receiver] = []
    for i, item in enumerate(receivers):
        where = f"receivers[{i}]"
        r = v.mapping(item, where, {"url", "bearer_token_file", "timeout"}, {"url"})
        parsed.append(Receiver(
            url=_url(r["url"], f"{where}.url"),
            bearer_token_file=rel(r["bearer_token_file"], f"{where}.bearer_token_file")
            if "bearer_token_file" in r else None,
            timeout_seconds=_positive(r["timeout"], f"{where}.timeout") if "timeout" in r
            else 5.0,
        ))
    out["receivers"] = tuple(parsed)

    web = v.mapping(top.get("web"), "web", {"reload_token_file"})
    if "reload_token_file" in web:
        out["reload_token_file"] = rel(web["reload_token_file"], "web.reload_token_file")
    return EngineConfig(**out)


def _detector(raw: Any) -> dict[str, Any]:
    from rules.detector import params_from_dict

    overrides = dict(v.mapping(raw, "anomalies.detector", _detector_fields()))
    merged = {"season_max_slots": 288, **overrides}
    try:
        params_from_dict(merged)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"anomalies.detector: {exc}") from None
    return merged


def _detector_fields() -> set[str]:
    from dataclasses import fields

    from rules.detector import DetectorParams

    return {f.name for f in fields(DetectorParams)}


def _positive(raw: Any, where: str) -> float:
    seconds = v.duration(raw, where)
    if seconds <= 0:
        raise ConfigError(f"{where}: must be > 0")
    return seconds


def _url(raw: Any, where: str) -> str:
    url = v.string(raw, where)
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"{where}: expected an http:// or https:// URL, got {url!r}")
    return url.rstrip("/")


def _listen(raw: Any) -> str:
    text = v.string(raw, "listen_address")
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"listen_address: expected host:port, got {text!r}")
    return text
