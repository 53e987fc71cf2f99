"""The route tree: matchers with `continue`, per-route receivers and timing, inherited down."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from alert_router.errors import ConfigError
from alert_router.matchers import LABEL_NAME, Matcher, matchers_from_config, matches_all
from alert_router.timeutil import parse_duration
from stacksense_common.config import check_keys  # lists the allowed keys

# Alertmanager's defaults.
DEFAULT_GROUP_WAIT = 30.0
DEFAULT_GROUP_INTERVAL = 300.0
DEFAULT_REPEAT_INTERVAL = 4 * 3600.0

ROUTE_KEYS = {
    "receiver",
    "group_by",
    "group_wait",
    "group_interval",
    "repeat_interval",
    "matchers",
    "match",
    "match_re",
    "continue",
    "routes",
    "receivers_by_label",
    "diagnostics",
}


@dataclass
class Route:
    """One node of the route tree with its effective (inherited) settings."""

    route_id: str  # position in the tree, e.g. "0.2.1": stable across reloads of one config
    receiver: str
    group_by: tuple[str, ...] | None  # None means "..." (group by every label)
    group_wait: float
    group_interval: float
    repeat_interval: float
    matchers: list[Matcher] = field(default_factory=list)
    continue_: bool = False
    routes: list[Route] = field(default_factory=list)
    diagnostics: bool = False  # fetch diagnostics for the first notification (inherited)

    def match(self, labels: Mapping[str, str]) -> list[Route]:
        """The routes that take an alert with `labels` (depth first, honouring `continue`)."""
        if not matches_all(self.matchers, labels):
            return []
        found: list[Route] = []
        for child in self.routes:
            hits = child.match(labels)
            found.extend(hits)
            if hits and not child.continue_:
                break
        return found or [self]

    def group_labels(self, labels: Mapping[str, str]) -> dict[str, str]:
        """The labels that name this alert's group on this route."""
        if self.group_by is None:
            return dict(labels)
        return {name: labels[name] for name in self.group_by if name in labels}

    def group_key(self, labels: Mapping[str, str]) -> str:
        """Alertmanager-style group key: `{matchers path}:{group labels}`, unique per route."""
        group = self.group_labels(labels)
        inner = ", ".join(f'{k}="{v}"' for k, v in sorted(group.items()))
        return f"{self.route_id}:{{{inner}}}"

    def walk(self) -> list[Route]:
        """This route and all its descendants."""
        out = [self]
        for child in self.routes:
            out.extend(child.walk())
        return out


def _duration(raw: Mapping[str, Any], key: str, path: str, inherited: float) -> float:
    if key not in raw:
        return inherited
    try:
        value = parse_duration(raw[key])
    except ValueError as exc:
        raise ConfigError(f"{path}.{key}", str(exc)) from None
    return value


def _matchers(raw: Mapping[str, Any], path: str) -> list[Matcher]:
    return matchers_from_config(raw, "", path)


def _group_by(
    raw: Mapping[str, Any], path: str, inherited: tuple[str, ...] | None
) -> tuple[str, ...] | None:
    if "group_by" not in raw:
        return inherited
    value = raw["group_by"]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{path}.group_by", "must be a list of label names")
    if "..." in value:
        if len(value) != 1:
            raise ConfigError(f"{path}.group_by", "'...' must be the only entry")
        return None
    for i, name in enumerate(value):
        if not LABEL_NAME.match(name):
            raise ConfigError(f"{path}.group_by[{i}]", f"invalid label name {name!r}")
    return tuple(value)


def _by_label_routes(raw: Any, path: str) -> list[dict[str, Any]]:
    """Expand `receivers_by_label` into plain child routes (one per label value)."""
    if not isinstance(raw, dict):
        raise ConfigError(path, "must be a mapping with keys label, receivers")
    check_keys(raw, path, {"label", "receivers", "continue"})
    label = raw.get("label")
    if not isinstance(label, str) or not LABEL_NAME.match(label):
        raise ConfigError(f"{path}.label", "required: the label whose value picks the receiver")
    receivers = raw.get("receivers")
    if not isinstance(receivers, dict) or not receivers:
        raise ConfigError(f"{path}.receivers", "required: a mapping of label value to receiver")
    children: list[dict[str, Any]] = []
    for value, receiver in receivers.items():
        targets = receiver if isinstance(receiver, list) else [receiver]
        for target in targets:
            if not isinstance(target, str):
                raise ConfigError(f"{path}.receivers.{value}", "must name a receiver")
            # Several receivers for one value: every one but the last continues.
            children.append({"receiver": target, "match": {label: str(value)}, "continue": True})
    if not raw.get("continue", False):
        # Per value, the last child stops the walk so the route's default is not also used.
        last_for_value: dict[str, int] = {}
        for i, child in enumerate(children):
            last_for_value[child["match"][label]] = i
        for i in last_for_value.values():
            children[i]["continue"] = False
    return children


def build_route(
    raw: Any, path: str = "route", parent: Route | None = None, route_id: str = "0"
) -> Route:
    """Validate one route mapping (recursively) and build the tree with inherited settings."""
    if not isinstance(raw, dict):
        raise ConfigError(path, "must be a mapping")
    check_keys(raw, path, ROUTE_KEYS)
    receiver = raw.get("receiver", parent.receiver if parent else None)
    if not isinstance(receiver, str) or not receiver:
        raise ConfigError(f"{path}.receiver", "required (the top route must name a receiver)")
    if parent is None and (raw.get("matchers") or raw.get("match") or raw.get("match_re")):
        raise ConfigError(f"{path}.matchers", "the top route must match every alert")
    cont = raw.get("continue", False)
    if not isinstance(cont, bool):
        raise ConfigError(f"{path}.continue", "must be true or false")
    diagnostics = raw.get("diagnostics", parent.diagnostics if parent else False)
    if not isinstance(diagnostics, bool):
        raise ConfigError(f"{path}.diagnostics", "must be true or false")
    route = Route(
        route_id=route_id,
        receiver=receiver,
        group_by=_group_by(raw, path, parent.group_by if parent else ()),
        group_wait=_duration(
            raw, "group_wait", path, parent.group_wait if parent else DEFAULT_GROUP_WAIT
        ),
        group_interval=_duration(
            raw, "group_interval", path, parent.group_interval if parent else DEFAULT_GROUP_INTERVAL
        ),
        repeat_interval=_duration(
            raw,
            "repeat_interval",
            path,
            parent.repeat_interval if parent else DEFAULT_REPEAT_INTERVAL,
        ),
        matchers=_matchers(raw, path),
        continue_=cont,
        diagnostics=diagnostics,
    )
    if route.group_interval <= 0:
        raise ConfigError(f"{path}.group_interval", "must be greater than 0")
    if route.repeat_interval <= 0:
        raise ConfigError(f"{path}.repeat_interval", "must be greater than 0")
    children = raw.get("routes", [])
    if not isinstance(children, list):
        raise ConfigError(f"{path}.routes", "must be a list of routes")
    if "receivers_by_label" in raw:
        children = _by_label_routes(raw["receivers_by_label"], f"{path}.receivers_by_label") + list(
            children
        )
    for i, child in enumerate(children):
        route.routes.append(build_route(child, f"{path}.routes[{i}]", route, f"{route_id}.{i}"))
    return route
