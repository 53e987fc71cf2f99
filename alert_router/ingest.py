"""Validate incoming alerts in every accepted form into one normalised shape.

Normalised alert: {"labels", "annotations", "startsAt", "endsAt", "generatorURL"} with times
as unix seconds (None when not given). Valid alerts of a request are kept even when others
in it are invalid; the errors name each invalid alert by index and field.
"""

from __future__ import annotations

from typing import Any

from alert_router import limits
from alert_router.errors import InputError, LimitError
from alert_router.matchers import LABEL_NAME
from alert_router.timeutil import parse_time
from alert_router.trace import ANNOTATION as TRACE_ANNOTATION
from alert_router.trace import VALID as VALID_TRACE

Normalised = dict[str, Any]
_known_names: set[str] = set()  # label names already checked: a cache, not state
# (what, items per alert, name size, value size), looked up once per map on the hot path.
_LABEL_LIMITS = (
    "labels",
    limits.LABELS_PER_ALERT,
    limits.LABEL_NAME_CHARS,
    limits.LABEL_VALUE_CHARS,
)
_ANNOTATION_LIMITS = (
    "annotations",
    limits.ANNOTATIONS_PER_ALERT,
    limits.ANNOTATION_NAME_CHARS,
    limits.ANNOTATION_VALUE_CHARS,
)


def _valid_name(name: Any) -> bool:
    if name in _known_names:
        return True
    if isinstance(name, str) and LABEL_NAME.match(name):
        if len(_known_names) < 10000:
            _known_names.add(name)
        return True
    return False


def _string_map(value: Any, path: str, *, names_must_be_labels: bool) -> dict[str, str]:
    if value is None:
        return {}
    if type(value) is not dict:
        raise InputError(f"{path}: must be an object of strings")
    what, most, name_max, value_max = _LABEL_LIMITS if names_must_be_labels else _ANNOTATION_LIMITS
    if len(value) > most:
        raise InputError(
            f"{path}: {len(value)} {what}, more than the limit of {most} ({what} per alert)"
        )
    # One test per entry in the common case (this runs for every alert); _check_entry
    # finds what is wrong, or learns a new label name.
    if names_must_be_labels:
        known = _known_names
        for key, item in value.items():
            if type(item) is not str or len(item) > value_max or key not in known:
                _check_entry(key, item, path, names_must_be_labels)
    else:
        for key, item in value.items():
            if type(item) is not str or len(item) > value_max or len(key) > name_max:
                _check_entry(key, item, path, names_must_be_labels)
    return value


def _check_entry(key: Any, item: Any, path: str, names_must_be_labels: bool) -> None:
    """Raise InputError naming what is wrong with one entry of a label or annotation map."""
    what, _most, name_max, value_max = _LABEL_LIMITS if names_must_be_labels else _ANNOTATION_LIMITS
    if type(item) is not str:
        raise InputError(f"{path}.{_short(key)}: must be a string")
    if len(item) > value_max:
        raise InputError(
            f"{path}.{_short(key)}: value longer than the limit of "
            f"{value_max} characters ({what[:-1]} value size)"
        )
    if names_must_be_labels and key in _known_names:
        return  # a label name seen before: valid and short
    if len(key) > name_max:
        raise InputError(
            f"{path}.{_short(key)}: name longer than the limit of "
            f"{name_max} characters ({what[:-1]} name size)"
        )
    if names_must_be_labels and not _valid_name(key):
        raise InputError(f"{path}.{key}: invalid label name (want [a-zA-Z_][a-zA-Z0-9_]*)")


def _short(name: str) -> str:
    """A field name as an error message shows it: never more than 64 characters."""
    return name if len(name) <= 64 else f"{name[:64]}..."


def check_count(items: list[Any], path: str) -> None:
    """LimitError (413) when one request holds more alerts than the documented limit."""
    if len(items) > limits.ALERTS_PER_REQUEST:
        raise LimitError(
            f"{path}: {len(items)} alerts in one request, more than the limit of "
            f"{limits.ALERTS_PER_REQUEST} (alerts per request); send batches"
        )


def _time(value: Any, path: str) -> float | None:
    if value is None or value == "":
        return None
    try:
        return parse_time(value)
    except ValueError as exc:
        raise InputError(f"{path}: {exc}") from None


def normalise_alert(raw: Any, path: str, *, now: float, status: str | None = None) -> Normalised:
    """One alert in Alertmanager's field names; raises InputError naming the field."""
    if type(raw) is not dict:
        raise InputError(f"{path}: must be an object")
    labels = _string_map(raw.get("labels"), f"{path}.labels", names_must_be_labels=True)
    if "" in labels.values():
        labels = {k: v for k, v in labels.items() if v != ""}
    if not labels:
        raise InputError(f"{path}.labels: at least one label with a non-empty value is required")
    annotations = raw.get("annotations")
    if annotations is not None:
        annotations = _string_map(annotations, f"{path}.annotations", names_must_be_labels=False)
        trace_id = annotations.get(TRACE_ANNOTATION)
        # The id is a lookup key, in URLs and log lines: nothing else gets through.
        if trace_id is not None and not VALID_TRACE.match(trace_id):
            raise InputError(
                f"{path}.annotations.{TRACE_ANNOTATION}: must be 1-64 characters "
                "of A-Z a-z 0-9 _ . -"
            )
    starts = raw.get("startsAt")
    ends = raw.get("endsAt")
    if starts is not None:
        starts = _time(starts, f"{path}.startsAt")
    if ends is not None:
        ends = _time(ends, f"{path}.endsAt")
    if starts is not None and ends is not None and ends < starts:
        raise InputError(f"{path}.endsAt: is before startsAt")
    url = raw.get("generatorURL", "")
    if type(url) is not str:
        raise InputError(f"{path}.generatorURL: must be a string")
    if len(url) > limits.GENERATOR_URL_CHARS:
        raise InputError(
            f"{path}.generatorURL: longer than the limit of {limits.GENERATOR_URL_CHARS} characters"
        )
    if status == "resolved" and ends is None:
        ends = now
    return {
        "labels": labels,
        "annotations": annotations or {},
        "startsAt": starts,
        "endsAt": ends,
        "generatorURL": url,
    }


def _normalise_list(
    items: Any, path: str, *, now: float, with_status: bool
) -> tuple[list[Normalised], list[str]]:
    if not isinstance(items, list):
        raise InputError(f"{path}: must be a list of alerts")
    check_count(items, path)
    good: list[Normalised] = []
    errors: list[str] = []
    for i, item in enumerate(items):
        item_path = f"{path}[{i}]"
        try:
            status = None
            if with_status and isinstance(item, dict):
                status = item.get("status", "firing")
                if status not in ("firing", "resolved"):
                    raise InputError(f"{item_path}.status: must be firing or resolved")
            good.append(normalise_alert(item, item_path, now=now, status=status))
        except InputError as exc:
            errors.append(str(exc))
    return good, errors


def postable_alerts(body: Any, *, now: float) -> tuple[list[Normalised], list[str]]:
    """Alertmanager v2 postableAlerts (a JSON list)."""
    return _normalise_list(body, "alerts", now=now, with_status=False)


def alertmanager_webhook(body: Any, *, now: float) -> tuple[list[Normalised], list[str]]:
    """Alertmanager's webhook payload, version "4"."""
    if not isinstance(body, dict):
        raise InputError("body: must be a JSON object (Alertmanager webhook payload)")
    version = body.get("version")
    if version != "4":
        raise InputError(f'version: must be "4" (Alertmanager webhook), got {version!r}')
    return _normalise_list(body.get("alerts"), "alerts", now=now, with_status=True)


def grafana_webhook(body: Any, *, now: float) -> tuple[list[Normalised], list[str]]:
    """Grafana (unified alerting) webhook contact point payload."""
    if not isinstance(body, dict):
        raise InputError("body: must be a JSON object (Grafana webhook payload)")
    items = body.get("alerts")
    if not isinstance(items, list):
        raise InputError("alerts: required, a list of alerts")
    check_count(items, "alerts")
    good: list[Normalised] = []
    errors: list[str] = []
    for i, raw in enumerate(items):
        one, err = _normalise_list([raw], "alerts", now=now, with_status=True)
        if err:
            errors.append(err[0].replace("alerts[0]", f"alerts[{i}]", 1))
            continue
        alert = one[0]
        # Grafana's links are useful in notifications; keep them as annotations.
        for key in ("dashboardURL", "panelURL", "silenceURL", "valueString"):
            value = raw.get(key)
            if (
                isinstance(value, str)
                and value
                and key not in alert["annotations"]
                and len(value) <= limits.ANNOTATION_VALUE_CHARS
            ):
                alert["annotations"] = {**alert["annotations"], key: value}
        good.append(alert)
    return good, errors


_GENERIC_KEYS = {
    "name",
    "server",
    "severity",
    "status",
    "summary",
    "description",
    "labels",
    "annotations",
    "starts_at",
    "ends_at",
    "url",
}


def _generic_one(raw: Any, path: str, now: float) -> Normalised:
    if not isinstance(raw, dict):
        raise InputError(f"{path}: must be an object")
    unknown = sorted(set(raw) - _GENERIC_KEYS)
    if unknown:
        raise InputError(f"{path}.{unknown[0]}: unknown field (see docs/alert-router.md)")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise InputError(f"{path}.name: required, the alert name")
    labels = dict(_string_map(raw.get("labels"), f"{path}.labels", names_must_be_labels=True))
    annotations = dict(
        _string_map(raw.get("annotations"), f"{path}.annotations", names_must_be_labels=False)
    )
    labels["alertname"] = name
    for key, target in (
        ("server", labels),
        ("severity", labels),
        ("summary", annotations),
        ("description", annotations),
    ):
        if key in raw:
            if not isinstance(raw[key], str):
                raise InputError(f"{path}.{key}: must be a string")
            target[key] = raw[key]
    # The named fields join the maps: the same limits apply to the result.
    _string_map(labels, f"{path}.labels", names_must_be_labels=True)
    _string_map(annotations, f"{path}.annotations", names_must_be_labels=False)
    status = raw.get("status", "firing")
    if status not in ("firing", "resolved"):
        raise InputError(f"{path}.status: must be firing or resolved")
    url = raw.get("url", "")
    return normalise_alert(
        {
            "labels": labels,
            "annotations": annotations,
            "startsAt": raw.get("starts_at"),
            "endsAt": raw.get("ends_at"),
            "generatorURL": url,
        },
        path,
        now=now,
        status=status,
    )


def generic_alerts(body: Any, *, now: float) -> tuple[list[Normalised], list[str]]:
    """The documented generic form: {"alerts": [...]} or one alert object."""
    if isinstance(body, dict) and "alerts" in body:
        if set(body) - {"alerts"}:
            raise InputError(f"{sorted(set(body) - {'alerts'})[0]}: unknown field")
        items, path = body["alerts"], "alerts"
    else:
        items, path = [body], "alert"
    if not isinstance(items, list):
        raise InputError("alerts: must be a list")
    check_count(items, path)
    good: list[Normalised] = []
    errors: list[str] = []
    for i, item in enumerate(items):
        try:
            good.append(_generic_one(item, f"{path}[{i}]" if path == "alerts" else path, now))
        except InputError as exc:
            errors.append(str(exc))
    return good, errors


def trusted_postable(items: list[dict[str, Any]], *, now: float) -> list[Normalised]:
    """Normalise postable alerts that were validated when they were accepted (the inbox)."""
    out: list[Normalised] = []
    for raw in items:
        labels = raw["labels"]
        if "" in labels.values():
            labels = {k: v for k, v in labels.items() if v != ""}
        starts = raw.get("startsAt")
        ends = raw.get("endsAt")
        out.append(
            {
                "labels": labels,
                "annotations": raw.get("annotations") or {},
                "startsAt": parse_time(starts) if starts else None,
                "endsAt": parse_time(ends) if ends else None,
                "generatorURL": raw.get("generatorURL", ""),
            }
        )
    return out
