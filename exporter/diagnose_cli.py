"""`stacksense diagnose SERVER`: the diagnostic report and its findings in a terminal.

By default asks the running exporter (`POST /api/v1/diagnose/SERVER`, with the
bearer token from --token-file when it has one); `--inventory FILE --direct`
connects from here with that inventory instead (no exporter needed).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

from exporter.cli_options import add_exporter_options


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "diagnose",
        help="what is going on on a server: top processes, full "
        "filesystems, failed units, findings",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("server", help="the server's name in the inventory")
    add_exporter_options(
        p,
        url_help="exporter URL",
        token_help="bearer token for the exporter's API (if it needs one)",
    )
    p.add_argument(
        "--direct",
        action="store_true",
        help="connect from here using --inventory instead of asking the exporter",
    )
    p.add_argument(
        "--inventory",
        type=Path,
        default=Path(os.environ.get("STACKSENSE_INVENTORY", "servers.yml")),
        help="inventory file for --direct (default: $STACKSENSE_INVENTORY or ./servers.yml)",
    )
    p.add_argument("--alertname", help="order the findings for this alert")
    p.add_argument("--json", action="store_true", help="print the JSON report")


def run(args: argparse.Namespace) -> int:
    labels = {"alertname": args.alertname} if args.alertname else {}
    try:
        report = _direct(args, labels) if args.direct else _ask(args, labels)
    except DiagnoseError as exc:
        print(f"stacksense diagnose: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(report, indent=2) if args.json else render(report))
    return 0


class DiagnoseError(Exception):
    pass


def _ask(args: argparse.Namespace, labels: dict[str, str]) -> dict[str, Any]:
    import requests

    headers = {}
    if args.token_file:
        try:
            headers["Authorization"] = f"Bearer {Path(args.token_file).read_text().strip()}"
        except OSError as exc:
            raise DiagnoseError(f"cannot read --token-file: {exc.strerror}") from None
    url = f"{args.exporter.rstrip('/')}/api/v1/diagnose/{quote(args.server, safe='')}"
    try:
        resp = requests.post(url, json={"labels": labels}, headers=headers, timeout=30)
    except requests.RequestException as exc:
        raise DiagnoseError(
            f"cannot reach the exporter at {args.exporter} "
            f"({type(exc).__name__}); use --direct to connect from here"
        ) from None
    try:
        body: dict[str, Any] = resp.json()
    except ValueError:
        body = {"error": resp.text[:200]}
    if resp.status_code != 200:
        raise DiagnoseError(f"{resp.status_code}: {body.get('error')}")
    return body


def _direct(args: argparse.Namespace, labels: dict[str, str]) -> dict[str, Any]:
    from exporter.config import ConfigError, load_inventory
    from exporter.diagnose import Diagnoser
    from exporter.recommend import RuleRecommender
    from exporter.ssh_pool import SshPool

    try:
        inventory = load_inventory(str(args.inventory))
    except ConfigError as exc:
        raise DiagnoseError(str(exc)) from None
    server = inventory.server(args.server)
    if server is None:
        raise DiagnoseError(f"no server named {args.server!r} in {args.inventory}")
    if server.push_only:
        raise DiagnoseError(f"{server.name} is push-only: never contacted over SSH")
    pool = SshPool(inventory)
    try:
        report = Diagnoser(pool).diagnose(server)
    finally:
        pool.close()
    findings = RuleRecommender().recommend(labels, report)
    return {**report, "findings": [f.to_json() for f in findings]}


def render(r: dict[str, Any]) -> str:
    """The report as text: findings first (what an operator reads), then the evidence."""
    from exporter.recommend import human_size

    out = [
        f"{r.get('server')}: diagnostics in {r.get('duration_seconds')}s"
        + ("" if r.get("complete") else " (INCOMPLETE)")
    ]
    if r.get("error"):
        out.append(f"  error: {r['error']}")
    out.append("\nFindings:")
    for f in r.get("findings") or []:
        out.append(f"  * {f['text']}\n      -> {f['action']}")
        out += [f"         {e}" for e in f.get("evidence", [])[:5]]
    if not r.get("findings"):
        out.append("  (nothing stands out)")
    mem, load = r.get("memory") or {}, r.get("load") or {}
    if mem.get("used_ratio") is not None:
        out.append(
            f"\nMemory: {mem['used_ratio'] * 100:.0f} % used of "
            f"{human_size(mem.get('total_bytes'))}; OOM kills since boot: "
            f"{mem.get('oom_kills_since_boot')}"
        )
    if load.get("load1") is not None:
        out.append(
            f"Load: {load['load1']} {load.get('load5')} {load.get('load15')} on "
            f"{load.get('cpus')} CPUs"
        )
    for title, key in (("Top CPU", "by_cpu"), ("Top memory", "by_memory")):
        procs = (r.get("processes") or {}).get(key) or []
        out.append(f"\n{title}:")
        out += [
            f"  {p['pid']:>7} {p['user'][:10]:<10} {p['cpu_percent']:>5}% CPU "
            f"{human_size(p['rss_bytes']):>10}  {p['command']}"
            for p in procs[:5]
        ]
        if not procs:
            out.append(
                "  (none: "
                + r.get("sections", {}).get("ps_cpu" if key == "by_cpu" else "ps_memory", "?")
                + ")"
            )
    out.append(f"\nFilesystems at or above {r.get('full_percent_threshold')} %:")
    for fs in r.get("filesystems") or []:
        out.append(
            f"  {fs['mountpoint']} {fs['used_percent']:.0f} % "
            f"({human_size(fs['used_bytes'])} of {human_size(fs['size_bytes'])})"
        )
        out += [f"      {human_size(x['bytes']):>10}  {x['path']}" for x in fs["largest"][:6]]
    if not r.get("filesystems"):
        out.append("  (none)")
    units = r.get("failed_units") or []
    out.append(
        f"\nFailed units ({r.get('systemd')}): " + (", ".join(u["unit"] for u in units) or "none")
    )
    ports = r.get("listening") or []
    out.append(
        "Listening: "
        + (
            ", ".join(
                f"{p['protocol']}/{p['port']}" + (f" ({p['process']})" if p["process"] else "")
                for p in ports[:15]
            )
            or "none"
        )
    )
    kernel = r.get("kernel") or {}
    out.append(
        "Kernel log: "
        + (
            kernel.get("note")
            or f"{len(kernel.get('oom_lines') or [])} OOM lines, "
            f"{len(kernel.get('disk_error_lines') or [])} disk error lines"
        )
    )
    return "\n".join(out)
