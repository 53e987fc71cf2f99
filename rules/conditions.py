"""Condition rules: YAML format, shipped defaults, and the for-duration state machine.

A condition is a PromQL expression (or a metric compared with a threshold)
whose result series are "active"; an active series becomes *firing* once it
has stayed active for the rule's `for` duration (pending before that), and
*resolved* when it leaves the result, as Prometheus alerting rules behave.

Annotation templates use a str.format-like syntax, chosen over jinja2 so that
every template translates exactly into a Prometheus rule file (see export.py):
`{value}`, `{value_percent}`, `{threshold}`, `{threshold_percent}`, and
`{NAME}` for any label of the series (e.g. `{server}`, `{mountpoint}`). A
missing label renders as `<no value>`, as Prometheus does. `{{` and `}}` are
literal braces.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from rules import validate as v
from rules.validate import ConfigError, read_yaml

OPERATORS = (">", ">=", "<", "<=", "==", "!=")
SEVERITIES = ("critical", "warning", "info", "none")
_RULE_KEYS = {
    "alert",
    "metric",
    "expr",
    "op",
    "threshold",
    "for",
    "severity",
    "labels",
    "annotations",
}
_RESERVED_LABELS = {"alertname", "severity"}


@dataclass(frozen=True)
class Condition:
    """One condition rule, validated."""

    alert: str
    expr: str  # the full PromQL whose result series are active
    severity: str
    for_seconds: float = 0.0
    op: str | None = None
    threshold: float | None = None
    metric: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)

    def render_annotations(self, labels: Mapping[str, str], value: float) -> dict[str, str]:
        """Fill the annotation templates for one series."""
        fields = _template_fields(labels, value, self.threshold)
        return {k: string.Formatter().vformat(t, (), fields) for k, t in self.annotations.items()}


class _Fields(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "<no value>"


def _template_fields(labels: Mapping[str, str], value: float, threshold: float | None) -> _Fields:
    fields = _Fields(labels)
    fields["value"] = f"{value:.4g}"
    fields["value_percent"] = f"{value * 100:.4g}%"
    fields["threshold"] = "<no value>" if threshold is None else f"{threshold:g}"
    fields["threshold_percent"] = "<no value>" if threshold is None else f"{threshold * 100:g}%"
    return fields


def check_template(template: str, where: str) -> None:
    """Reject templates whose placeholders are not plain names (no attributes, formats)."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ConfigError(f"{where}: invalid template: {exc}") from None
    for _literal, name, spec, conversion in parsed:
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            shown = name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
            raise ConfigError(
                f"{where}: placeholder {{{shown}}} must be a plain name such as "
                "{server} or {value_percent}"
            )


def parse_conditions(raw: Any, source: str) -> list[Condition]:
    """Validate a conditions document (`conditions: [...]`)."""
    top = v.mapping(raw, "", {"conditions"})
    items = top.get("conditions") or []
    if not isinstance(items, list):
        raise ConfigError(f"{source}: conditions: expected a list")
    out: list[Condition] = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        where = f"conditions[{i}]"
        try:
            cond = _parse_one(item, where)
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None
        if cond.alert in seen:
            raise ConfigError(f"{source}: {where}.alert: duplicate alert name {cond.alert!r}")
        seen.add(cond.alert)
        out.append(cond)
    return out


def _parse_one(item: Any, where: str) -> Condition:
    r = v.mapping(item, where, _RULE_KEYS, {"alert", "severity"})
    alert = v.string(r["alert"], f"{where}.alert")
    if not alert.isidentifier():
        raise ConfigError(f"{where}.alert: must be a name like HighCpuUsage, got {alert!r}")
    severity = r["severity"]
    if severity not in SEVERITIES:
        raise ConfigError(
            f"{where}.severity: must be one of {', '.join(SEVERITIES)}, got {severity!r}"
        )
    if ("metric" in r) == ("expr" in r):
        raise ConfigError(f"{where}: give exactly one of metric or expr")
    op = r.get("op")
    threshold = None
    if op is not None and op not in OPERATORS:
        raise ConfigError(f"{where}.op: must be one of {' '.join(OPERATORS)}, got {op!r}")
    if "threshold" in r:
        threshold = v.number(r["threshold"], f"{where}.threshold")
    if (op is None) != (threshold is None):
        raise ConfigError(f"{where}: op and threshold go together")
    metric = None
    if "metric" in r:
        metric = v.string(r["metric"], f"{where}.metric")
        if op is None:
            raise ConfigError(f"{where}: a metric condition needs op and threshold")
        expr = f"{metric} {op} {threshold:g}"
    else:
        base = v.string(r["expr"], f"{where}.expr").strip()
        expr = base if op is None else f"({base}) {op} {threshold:g}"
    labels = v.string_map(r.get("labels"), f"{where}.labels")
    for name in labels:
        if name in _RESERVED_LABELS or not name.isidentifier():
            raise ConfigError(f"{where}.labels.{name}: reserved or invalid label name")
    annotations = v.string_map(r.get("annotations"), f"{where}.annotations")
    for key, template in annotations.items():
        check_template(template, f"{where}.annotations.{key}")
    return Condition(
        alert=alert,
        expr=expr,
        severity=severity,
        for_seconds=v.duration(r["for"], f"{where}.for") if "for" in r else 0.0,
        op=op,
        threshold=threshold,
        metric=metric,
        labels=labels,
        annotations=annotations,
    )


def default_conditions() -> list[Condition]:
    """The shipped defaults (rules/default_conditions.yml)."""
    text = resources.files("rules").joinpath("default_conditions.yml").read_text()
    return parse_conditions(yaml.safe_load(text), "default_conditions.yml")


def load_conditions(path: Path | None, *, include_defaults: bool = True) -> list[Condition]:
    """Defaults (unless disabled) plus the user's file; a user rule replaces a same-named one."""
    rules = default_conditions() if include_defaults else []
    if path is not None:
        raw = read_yaml(path)
        user = parse_conditions(raw, str(path))
        names = {c.alert for c in user}
        rules = [c for c in rules if c.alert not in names] + user
    return rules


# --- for-duration state machine -------------------------------------------------------


@dataclass
class ActiveCondition:
    """One series of one condition that is pending or firing."""

    condition: str
    labels: dict[str, str]  # alert labels: series labels + rule labels + alertname + severity
    value: float
    active_since: float
    fired_at: float | None = None  # None while pending

    @property
    def firing(self) -> bool:
        """Whether the for-duration has elapsed."""
        return self.fired_at is not None


def alert_labels(cond: Condition, series_labels: Mapping[str, str]) -> dict[str, str]:
    """The alert's label set: series labels without __name__, then rule labels, name, severity."""
    labels = {k: v for k, v in series_labels.items() if k != "__name__"}
    labels.update(cond.labels)
    labels["alertname"] = cond.alert
    labels["severity"] = cond.severity
    return labels


def label_key(labels: Mapping[str, str]) -> str:
    """A stable text key for a label set (used in state files)."""
    return ",".join(f"{k}={labels[k]!r}" for k in sorted(labels))


class ConditionTracker:
    """Pending -> firing -> resolved bookkeeping for every condition's series."""

    def __init__(self) -> None:
        self.active: dict[str, ActiveCondition] = {}

    def update(
        self,
        cond: Condition,
        results: Iterable[tuple[Mapping[str, str], float]],
        now: float,
        frozen: frozenset[str] = frozenset(),
    ) -> list[ActiveCondition]:
        """Apply one evaluation of `cond`; return the instances that resolved now.

        Instances of `frozen` servers (offline, unknown: their series say nothing
        now) that left the result are kept as they are, not resolved, until fresh
        data about the server decides. Series still in the result are evaluated as
        usual: a condition about the failure itself (`stacksense_probe_success == 0`)
        must be able to fire while the server is down.
        """
        seen: set[str] = set()
        for series_labels, value in results:
            labels = alert_labels(cond, series_labels)
            key = label_key(labels)
            seen.add(key)
            entry = self.active.get(key)
            if entry is None:
                entry = ActiveCondition(cond.alert, labels, value, active_since=now)
                self.active[key] = entry
            entry.value = value
            if entry.fired_at is None and now - entry.active_since >= cond.for_seconds:
                entry.fired_at = now
        resolved = []
        for key in [
            k
            for k, a in self.active.items()
            if a.condition == cond.alert and a.labels.get("server") not in frozen
        ]:
            if key not in seen:
                entry = self.active.pop(key)
                if entry.firing:
                    resolved.append(entry)
        return resolved

    def forget_servers(self, servers: set[str]) -> None:
        """Drop every instance of servers that left the inventory (their alerts end now)."""
        self.active = {
            k: a for k, a in self.active.items() if a.labels.get("server") not in servers
        }

    def forget_missing(self, names: set[str]) -> None:
        """Drop state of conditions that no longer exist (after a reload)."""
        self.active = {k: a for k, a in self.active.items() if a.condition in names}

    def firing(self) -> list[ActiveCondition]:
        """Every firing instance."""
        return [a for a in self.active.values() if a.firing]

    def get_state(self) -> list[dict[str, Any]]:
        """JSON-friendly state."""
        return [
            {
                "condition": a.condition,
                "labels": a.labels,
                "value": a.value,
                "active_since": a.active_since,
                "fired_at": a.fired_at,
            }
            for a in self.active.values()
        ]

    @classmethod
    def from_state(cls, raw: Any) -> ConditionTracker:
        """Rebuild from `get_state()`; malformed entries are skipped."""
        tracker = cls()
        for item in raw if isinstance(raw, list) else []:
            try:
                entry = ActiveCondition(
                    str(item["condition"]),
                    dict(item["labels"]),
                    float(item["value"]),
                    float(item["active_since"]),
                    None if item["fired_at"] is None else float(item["fired_at"]),
                )
            except (KeyError, TypeError, ValueError):
                continue
            tracker.active[label_key(entry.labels)] = entry
        return tracker
