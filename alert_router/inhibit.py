"""Inhibition: a firing source alert mutes target alerts that share the `equal` labels."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from alert_router.errors import ConfigError
from alert_router.matchers import LABEL_NAME, Matcher, matchers_from_config, matches_all
from stacksense_common.config import check_keys  # lists the allowed keys

RULE_KEYS = {
    "source_matchers",
    "target_matchers",
    "equal",
    "source_match",
    "source_match_re",
    "target_match",
    "target_match_re",
}


@dataclass(frozen=True)
class InhibitRule:
    """One inhibition rule in Alertmanager's form."""

    source: tuple[Matcher, ...]
    target: tuple[Matcher, ...]
    equal: tuple[str, ...]

    def source_key(self, labels: Mapping[str, str]) -> tuple[str, ...] | None:
        """The `equal` values of a source alert, or None when `labels` is not a source."""
        if not matches_all(list(self.source), labels):
            return None
        return tuple(labels.get(name, "") for name in self.equal)


def source_alertnames(rules: list[InhibitRule]) -> set[str] | None:
    """The alertnames every source alert must have, or None when a rule allows any name."""
    names: set[str] = set()
    for rule in rules:
        fixed = [
            m.value for m in rule.source if m.name == "alertname" and m.is_equal and not m.is_regex
        ]
        if not fixed:
            return None
        names.add(fixed[0])
    return names


def default_inhibit_rules() -> list[InhibitRule]:
    """Shipped default: an offline server's ServerOffline alert mutes its other alerts."""
    return build_inhibit_rules(
        [
            {
                "source_matchers": ['alertname="ServerOffline"'],
                "target_matchers": ['alertname!~"ServerOffline|ServerOnline"'],
                "equal": ["server"],
            }
        ]
    )


def _side(raw: Mapping[str, Any], side: str, path: str) -> tuple[Matcher, ...]:
    return tuple(matchers_from_config(raw, f"{side}_", path))


def build_inhibit_rules(raw: Any) -> list[InhibitRule]:
    """Validate the `inhibit_rules` list."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ConfigError("inhibit_rules", "must be a list")
    rules = []
    for i, item in enumerate(raw):
        path = f"inhibit_rules[{i}]"
        if not isinstance(item, dict):
            raise ConfigError(path, "must be a mapping")
        check_keys(item, path, RULE_KEYS)
        equal = item.get("equal", [])
        if not isinstance(equal, list) or not all(
            isinstance(e, str) and LABEL_NAME.match(e) for e in equal
        ):
            raise ConfigError(f"{path}.equal", "must be a list of label names")
        source = _side(item, "source", path)
        if not source:
            raise ConfigError(f"{path}.source_matchers", "required: at least one matcher")
        rules.append(InhibitRule(source, _side(item, "target", path), tuple(equal)))
    return rules


class Inhibitor:
    """Answers "is this alert inhibited?" against a snapshot of the firing alerts."""

    def __init__(self, rules: list[InhibitRule], firing: Iterable[tuple[str, Mapping[str, str]]]):
        self._rules = rules
        # Per rule: equal-label values -> (fingerprint, also matches the target side) of the
        # firing sources.
        self._sources: list[dict[tuple[str, ...], list[tuple[str, bool]]]] = [{} for _ in rules]
        for fingerprint, labels in firing:
            for i, rule in enumerate(rules):
                key = rule.source_key(labels)
                if key is not None:
                    two_sided = matches_all(list(rule.target), labels)
                    self._sources[i].setdefault(key, []).append((fingerprint, two_sided))

    def inhibited_by(self, fingerprint: str, labels: Mapping[str, str]) -> list[str]:
        """Fingerprints of the firing alerts that inhibit this one (empty when not muted)."""
        found: list[str] = []
        for rule, sources in zip(self._rules, self._sources, strict=True):
            if not sources or not matches_all(list(rule.target), labels):
                continue
            key = tuple(labels.get(name, "") for name in rule.equal)
            # Alertmanager's hasEqual(excludeTwoSidedMatch): a target that also matches the
            # source side is never muted by a source that also matches the target side, so
            # two such alerts (e.g. two ServerOffline for one server) cannot mute each other.
            two_sided_target = matches_all(list(rule.source), labels)
            found.extend(
                fp
                for fp, two_sided in sources.get(key, [])
                if fp != fingerprint and not (two_sided_target and two_sided)
            )
        return found
