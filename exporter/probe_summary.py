"""A probe's output in a few human lines (`stacksense servers test`, POST .../test)."""

from __future__ import annotations

from collections import defaultdict

from prometheus_client.parser import text_string_to_metric_families


def summarize(text: str) -> list[str]:
    """Collectors, services, commands, logs and host facts, one line each that applies."""
    values: dict[str, list[tuple[dict[str, str], float]]] = defaultdict(list)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values[sample.name].append((dict(sample.labels), sample.value))
    lines: list[str] = []
    collectors = values.get("stacksense_collector_success", [])
    if collectors:
        bad = [labels["collector"] for labels, v in collectors if v != 1]
        lines.append(
            f"collectors: {len(collectors) - len(bad)} ok"
            + (f", no data from {', '.join(bad)}" if bad else "")
        )
    states = {
        labels["service"]: labels["state"]
        for labels, v in values.get("stacksense_service_state", [])
        if v == 1
    }
    services = [
        f"{labels['service']} {'up' if v == 1 else 'DOWN'}"
        + (f" ({states[labels['service']]})" if labels["service"] in states else "")
        for labels, v in values.get("stacksense_service_up", [])
    ]
    if services:
        lines.append("services: " + ", ".join(services))
    reasons = {
        labels["command"]: labels.get("reason", "")
        for labels, v in values.get("stacksense_command_last_error_info", [])
    }
    cmd_values = {labels["command"]: v for labels, v in values.get("stacksense_command_value", [])}
    commands = []
    for labels, ok in values.get("stacksense_command_success", []):
        name = labels["command"]
        if ok == 1:
            commands.append(f"{name} = {cmd_values.get(name, float('nan')):g}")
        else:
            commands.append(f"{name} FAILED ({reasons.get(name, 'unknown reason')})")
    if commands:
        lines.append("commands: " + ", ".join(commands))
    per_file: dict[str, list[str]] = defaultdict(list)
    for labels, v in values.get("stacksense_log_matches_total", []):
        per_file[labels["file"]].append(f"{labels['pattern']}={v:g}")
    for file, counts in per_file.items():
        lines.append(f"log {file}: {' '.join(counts)} (matches since the exporter started)")
    for labels, _ in values.get("stacksense_server_info", []):
        facts = ", ".join(f"{k}={v}" for k, v in labels.items() if k != "server" and v)
        lines.append(f"host: {facts}")
    return lines
