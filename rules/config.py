"""The rule engine's configuration file (YAML), validated strictly.

The file's shape is a tree of dataclasses read by the shared loader
(stacksense_common.config): their fields are the allowed keys and their defaults
the only defaults, every unknown key is an error naming its path and the allowed keys
(e.g. `status.offline_afer: unknown key (allowed: ...)`), durations are Prometheus'
grammar. `EngineConfig` is the flat view the engine uses, built from the file's tree;
its defaults are the tree's. Relative paths are taken relative to the configuration
file. Secrets (bearer tokens) are only ever read from files, at use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stacksense_common.config import ConfigError, Seconds, check_keys, load, read_yaml
from stacksense_common.secret import Secret

ANOMALY_METRICS = ("cpu", "memory", "disk", "network")
# Detector overrides for the engine. A 288-slot season ring (5-minute resolution)
# keeps memory at ~2.4 KB per series instead of ~9 KB at 15 s sampling; on
# 5-minute data (NAB) it is exactly the detector's default behaviour.
DETECTOR_DEFAULTS: dict[str, Any] = {"season_max_slots": 288}

__all__ = [
    "ANOMALY_METRICS",
    "ConfigError",
    "EngineConfig",
    "Receiver",
    "RulesFile",
    "load_config",
    "parse_config",
]


def _positive(seconds: float, key: str) -> None:
    if seconds <= 0:
        raise ConfigError(key, "must be > 0")


def _fraction(value: float, key: str) -> None:
    if value < 0:
        raise ConfigError(key, f"must be >= 0, got {value:g}")
    if value > 1:
        raise ConfigError(key, f"must be <= 1, got {value:g}")


def _http_url(url: str, key: str) -> str:
    if not url.startswith(("http://", "https://")):
        raise ConfigError(key, f"expected an http:// or https:// URL, got {url!r}")
    return url.rstrip("/")


@dataclass(frozen=True)
class Receiver:
    """An Alertmanager-compatible receiver of `POST /api/v2/alerts` (`receivers[]`)."""

    url: str
    bearer_token_file: Path | None = None
    timeout_seconds: Seconds = field(default=5.0, metadata={"key": "timeout"})

    def __post_init__(self) -> None:
        object.__setattr__(self, "url", _http_url(self.url, "url"))
        _positive(self.timeout_seconds, "timeout")

    def bearer_token(self) -> Secret | None:
        """Read the token (stripped) from its file at send time, so rotation needs no reload."""
        if self.bearer_token_file is None:
            return None
        return Secret.from_file(self.bearer_token_file)


@dataclass(frozen=True)
class PrometheusSection:
    url: str = "http://127.0.0.1:9090"
    timeout: Seconds = 10.0
    retries: int = 2
    bearer_token_file: Path | None = None
    exporter_job: str = "stacksense-exporter"
    prometheus_job: str = "prometheus"

    def __post_init__(self) -> None:
        object.__setattr__(self, "url", _http_url(self.url, "url"))
        _positive(self.timeout, "timeout")
        if not 0 <= self.retries <= 10:
            raise ConfigError("retries", f"must be >= 0 and <= 10, got {self.retries}")
        for key in ("exporter_job", "prometheus_job"):
            if not getattr(self, key):
                raise ConfigError(key, "expected a non-empty string")


@dataclass(frozen=True)
class StatusSection:
    offline_after: Seconds = 60.0
    grace_offline_after: Seconds = 600.0
    grace_period: Seconds = 600.0
    outage_threshold: Seconds = 300.0
    # A server never reached raises ServerUnreachable (warning) after this long.
    pending_timeout: Seconds = 300.0
    # The engine's own pipeline alerts (exporter down, Prometheus unreachable) fire after
    # the problem has lasted this long: past a restart, well within 3 minutes.
    pipeline_alert_after: Seconds = 60.0

    def __post_init__(self) -> None:
        for key in (
            "offline_after",
            "grace_offline_after",
            "grace_period",
            "outage_threshold",
            "pending_timeout",
            "pipeline_alert_after",
        ):
            _positive(getattr(self, key), key)
        if self.grace_offline_after < self.offline_after:
            raise ConfigError(
                "grace_offline_after",
                f"must be >= status.offline_after ({self.offline_after:g}s), "
                f"got {self.grace_offline_after:g}s",
            )


@dataclass(frozen=True)
class HealthSection:
    yellow_at: float = 0.70
    red_at: float = 0.85

    def __post_init__(self) -> None:
        _fraction(self.yellow_at, "yellow_at")
        _fraction(self.red_at, "red_at")
        if self.yellow_at > self.red_at:
            raise ConfigError("yellow_at", "must be <= health.red_at")


@dataclass(frozen=True)
class ConditionsSection:
    file: Path | None = None
    include_defaults: bool = True


@dataclass(frozen=True)
class AnomaliesSection:
    enabled: bool = True
    metrics: tuple[str, ...] = ANOMALY_METRICS
    # Overrides of rules.detector.DetectorParams, merged over DETECTOR_DEFAULTS.
    detector: dict[str, Any] = field(default_factory=dict)
    save_interval: Seconds = 600.0

    def __post_init__(self) -> None:
        for i, name in enumerate(self.metrics):
            if name not in ANOMALY_METRICS:
                raise ConfigError(
                    f"metrics[{i}]",
                    f"unknown metric {name!r} (known: {', '.join(ANOMALY_METRICS)})",
                )
        _positive(self.save_interval, "save_interval")
        object.__setattr__(self, "detector", _detector(self.detector))


@dataclass(frozen=True)
class WebSection:
    reload_token_file: Path | None = None


@dataclass(frozen=True)
class RulesFile:
    """The configuration file, key for key."""

    prometheus: PrometheusSection = field(default_factory=PrometheusSection)
    interval: Seconds = 15.0
    listen_address: str = "0.0.0.0:9817"
    external_url: str = "http://127.0.0.1:9817"
    state_file: Path = Path("stacksense-rules-state.json")
    status: StatusSection = field(default_factory=StatusSection)
    health: HealthSection = field(default_factory=HealthSection)
    conditions: ConditionsSection = field(default_factory=ConditionsSection)
    anomalies: AnomaliesSection = field(default_factory=AnomaliesSection)
    receivers: tuple[Receiver, ...] = ()
    web: WebSection = field(default_factory=WebSection)
    resolved_resend: Seconds = 900.0

    def __post_init__(self) -> None:
        _positive(self.interval, "interval")
        _listen(self.listen_address)
        object.__setattr__(self, "external_url", _http_url(self.external_url, "external_url"))


_P, _S, _H = PrometheusSection, StatusSection, HealthSection
_C, _A, _F = ConditionsSection, AnomaliesSection, RulesFile


@dataclass(frozen=True)
class EngineConfig:
    """Everything the engine needs, flat; `parse_config` builds it from a RulesFile.

    The defaults are the file's (class attributes of the section dataclasses).
    """

    prometheus_url: str = _P.url
    prometheus_timeout_seconds: float = _P.timeout
    prometheus_retries: int = _P.retries
    prometheus_bearer_token_file: Path | None = _P.bearer_token_file
    exporter_job: str = _P.exporter_job
    prometheus_job: str = _P.prometheus_job
    interval_seconds: float = _F.interval
    listen_address: str = _F.listen_address
    external_url: str = _F.external_url
    state_file: Path = _F.state_file
    offline_after_seconds: float = _S.offline_after
    grace_offline_after_seconds: float = _S.grace_offline_after
    grace_period_seconds: float = _S.grace_period
    outage_threshold_seconds: float = _S.outage_threshold
    pending_timeout_seconds: float = _S.pending_timeout
    pipeline_alert_after_seconds: float = _S.pipeline_alert_after
    health_yellow_at: float = _H.yellow_at
    health_red_at: float = _H.red_at
    conditions_file: Path | None = _C.file
    include_default_conditions: bool = _C.include_defaults
    anomalies_enabled: bool = _A.enabled
    anomaly_metrics: tuple[str, ...] = _A.metrics
    detector_params: dict[str, Any] = field(default_factory=lambda: dict(DETECTOR_DEFAULTS))
    anomaly_save_interval_seconds: float = _A.save_interval
    resolved_resend_seconds: float = _F.resolved_resend
    receivers: tuple[Receiver, ...] = _F.receivers
    reload_token_file: Path | None = WebSection.reload_token_file


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
    f = load(RulesFile, raw, base=base_dir)
    p, s = f.prometheus, f.status
    return EngineConfig(
        prometheus_url=p.url,
        prometheus_timeout_seconds=p.timeout,
        prometheus_retries=p.retries,
        prometheus_bearer_token_file=p.bearer_token_file,
        exporter_job=p.exporter_job,
        prometheus_job=p.prometheus_job,
        interval_seconds=f.interval,
        listen_address=f.listen_address,
        external_url=f.external_url,
        state_file=f.state_file,
        offline_after_seconds=s.offline_after,
        grace_offline_after_seconds=s.grace_offline_after,
        grace_period_seconds=s.grace_period,
        outage_threshold_seconds=s.outage_threshold,
        pending_timeout_seconds=s.pending_timeout,
        pipeline_alert_after_seconds=s.pipeline_alert_after,
        health_yellow_at=f.health.yellow_at,
        health_red_at=f.health.red_at,
        conditions_file=f.conditions.file,
        include_default_conditions=f.conditions.include_defaults,
        anomalies_enabled=f.anomalies.enabled,
        anomaly_metrics=f.anomalies.metrics,
        detector_params=f.anomalies.detector,
        anomaly_save_interval_seconds=f.anomalies.save_interval,
        resolved_resend_seconds=f.resolved_resend,
        receivers=f.receivers,
        reload_token_file=f.web.reload_token_file,
    )


def _detector(overrides: dict[str, Any]) -> dict[str, Any]:
    from rules.detector import params_from_dict

    check_keys(overrides, "detector", _detector_fields())
    merged = {**DETECTOR_DEFAULTS, **overrides}
    try:
        params_from_dict(merged)
    except (TypeError, ValueError) as exc:
        raise ConfigError("detector", str(exc)) from None
    return merged


def _detector_fields() -> set[str]:
    from dataclasses import fields

    from rules.detector import DetectorParams

    return {f.name for f in fields(DetectorParams)}


def _listen(text: str) -> None:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError("listen_address", f"expected host:port, got {text!r}")
