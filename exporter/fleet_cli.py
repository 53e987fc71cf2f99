"""`stacksense servers list|add|remove|suspend|resume|test|import|token`.

Changes edit the inventory file (comments and order kept, exporter.fleet) and then
ask the running exporter to reload (`POST /-/reload`, with the bearer token from
--token-file when the exporter has one). `list` asks the exporter's
`/api/v1/servers` and, when reachable, the rule engine's (its status and reason
win: it sees the history, the exporter only the last probe).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import requests

from exporter.cli_options import add_exporter_options
from exporter.fleet import Fleet, FleetError, ImportRow
from stacksense_common.secret import Secret

DEFAULT_RULES = "http://127.0.0.1:9817"
HTTP_TIMEOUT = 10.0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "servers",
        help="list, add, remove, suspend, resume, test or import servers",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--inventory",
        type=Path,
        default=Path(os.environ.get("STACKSENSE_INVENTORY", "servers.yml")),
        help="inventory file (default: $STACKSENSE_INVENTORY or ./servers.yml)",
    )
    add_exporter_options(
        common,
        url_help="exporter URL to reload and ask",
        token_help="bearer token for the exporter's reload (if it needs one)",
    )
    common.add_argument(
        "--no-reload",
        action="store_true",
        help="only edit the inventory; do not ask the exporter to reload",
    )
    ops = p.add_subparsers(dest="op", required=True, metavar="OPERATION")

    lst = ops.add_parser("list", parents=[common], help="status, last heartbeat and reason")
    lst.add_argument(
        "--rules",
        default=os.environ.get("STACKSENSE_RULES_URL", DEFAULT_RULES),
        help="rule engine URL (its status wins when reachable; default %(default)s)",
    )
    lst.add_argument("--json", action="store_true", help="print JSON")

    add = ops.add_parser(
        "add", parents=[common], help="add a server (with a password: deploy the key first)"
    )
    add.add_argument("name")
    add.add_argument("--host", help="host name or address (not needed with --mode push)")
    add.add_argument("--port", type=int)
    add.add_argument("--user")
    add.add_argument("--credentials")
    add.add_argument("--module")
    add.add_argument("--jump", metavar="NAME")
    add.add_argument("--mode", choices=["ssh", "push"], default="ssh")
    add.add_argument("--label", action="append", default=[], metavar="KEY=VALUE")
    add.add_argument("--trust-on-first-use", action="store_true")
    pw = add.add_mutually_exclusive_group()
    pw.add_argument(
        "--password-env",
        metavar="VAR",
        help="onboard: log in once with this password and deploy the key",
    )
    pw.add_argument("--password-file", type=Path, metavar="FILE")
    pw.add_argument("--password-prompt", action="store_true")

    rm = ops.add_parser("remove", parents=[common], help="remove a server")
    rm.add_argument("name")
    rm.add_argument(
        "--remove-key",
        action="store_true",
        help="first take the monitoring key off the host's authorized_keys",
    )
    for op, text in (
        ("suspend", "stop probing a server (kept in the inventory)"),
        ("resume", "probe a suspended server again"),
        ("test", "probe a server once and print what it found"),
        ("token", "print a new push token for a server (once; only its hash is stored)"),
    ):
        ops.add_parser(op, parents=[common], help=text).add_argument("name")
    imp = ops.add_parser(
        "import", parents=[common], help="add many servers from a CSV (safe to re-run)"
    )
    imp.add_argument(
        "file",
        type=Path,
        help="CSV with a header: name,host[,port,user,credentials,module,labels,"
        "mode,password_env,password_file]; labels as k=v;k2=v2",
    )


def run(args: argparse.Namespace) -> int:
    op = args.op
    try:
        if op == "list":
            return _list(args)
        if op == "test":
            return _test(args)
        fleet = Fleet(args.inventory)
        if op == "add":
            message = _add(args, fleet)
        elif op == "remove":
            message = fleet.remove(args.name, remove_key=args.remove_key)
        elif op in ("suspend", "resume"):
            message = fleet.set_suspended(args.name, op == "suspend")
        elif op == "token":
            token = fleet.new_push_token(args.name)
            print(f"{args.name}: new push token (shown once; the inventory keeps its hash):")
            print(token)
            message = "token replaced"
        else:
            return _import(args, fleet)
    except FleetError as exc:
        print(f"stacksense servers {op}: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - a ProbeFailure, an OSError: one line
        print(f"stacksense servers {op}: {_why(exc)}", file=sys.stderr)
        return 1
    print(f"{args.name}: {message}")
    return _reload(args)


def _why(exc: Exception) -> str:
    reason = getattr(exc, "reason", None)
    short = getattr(exc, "short_message", None)
    if reason and callable(short):
        return f"{reason}: {short()}"
    return f"{type(exc).__name__}: {exc}"


def _labels(items: list[str]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise FleetError(f"--label {item!r}: expected KEY=VALUE")
        labels[key] = value
    return labels


def _add(args: argparse.Namespace, fleet: Fleet) -> str:
    raw: dict[str, Any] = {
        "name": args.name,
        "host": args.host,
        "port": args.port,
        "user": args.user,
        "credentials": args.credentials,
        "module": args.module,
        "jump": args.jump,
        "mode": args.mode,
        "labels": _labels(args.label),
        "trust_on_first_use": args.trust_on_first_use,
    }
    raw = {k: v for k, v in raw.items() if v not in (None, "", {}, False)}
    if args.password_env or args.password_file or args.password_prompt:
        from exporter.onboarding.onboard import read_password

        password = read_password(args.password_env, args.password_file, args.password_prompt)
        return onboard_entry(fleet, raw, password)
    return fleet.add(raw)


def onboard_entry(fleet: Fleet, raw: dict[str, Any], password: Secret) -> str:
    """Today's onboarding (exporter.onboarding) for one entry: deploy the key, then record it."""
    from exporter.fleet import normalize_entry
    from exporter.onboarding.keys import HostKeyRefused, KeyProblem
    from exporter.onboarding.onboard import OnboardError, OnboardRequest, onboard

    entry = normalize_entry(raw)
    before = next((s for s in fleet.entries() if s.get("name") == entry["name"]), None)
    try:
        result = onboard(
            OnboardRequest(
                name=entry["name"],
                host=entry["host"],
                port=entry.get("port", 22),
                user=entry.get("user"),
                password=password,
                inventory=fleet.path,
                credentials=entry.get("credentials", "default"),
                trust_on_first_use=bool(entry.get("trust_on_first_use")),
                jump=entry.get("jump"),
                module=entry.get("module"),
                labels=entry.get("labels", {}),
            )
        )
    except (OnboardError, KeyProblem, HostKeyRefused) as exc:
        raise FleetError(str(exc)) from None
    after = next((s for s in fleet.entries() if s.get("name") == entry["name"]), None)
    key = "key deployed" if result.key_added else "key already authorized"
    if before is None:
        return f"added ({key})"
    return f"{'unchanged' if before == after else 'updated'} ({key})"


def _reload(args: argparse.Namespace) -> int:
    if args.no_reload:
        return 0
    headers = {}
    if args.token_file:
        try:
            headers["Authorization"] = f"Bearer {Path(args.token_file).read_text().strip()}"
        except OSError as exc:
            print(f"stacksense servers: cannot read --token-file: {exc.strerror}", file=sys.stderr)
            return 1
    url = args.exporter.rstrip("/") + "/-/reload"
    try:
        resp = requests.post(url, headers=headers, timeout=HTTP_TIMEOUT)
    except requests.RequestException:
        print(
            f"note: the exporter at {args.exporter} is not reachable; the change applies "
            "when it starts (or reloads)",
            file=sys.stderr,
        )
        return 0
    if resp.status_code != 200:
        print(
            f"stacksense servers: the inventory was changed but the exporter's reload "
            f"answered {resp.status_code}: {resp.text.strip()[:300]}",
            file=sys.stderr,
        )
        return 1
    print("exporter reloaded")
    return 0


def _get_json(url: str) -> Any:
    resp = requests.get(url, timeout=HTTP_TIMEOUT)
    resp.raise_for_status()
    return resp.json()


def _list(args: argparse.Namespace) -> int:
    notes: list[str] = []
    try:
        views = _get_json(args.exporter.rstrip("/") + "/api/v1/servers")["servers"]
    except (requests.RequestException, ValueError, KeyError, TypeError):
        notes.append(f"the exporter at {args.exporter} is not reachable: statuses unknown")
        try:
            entries = Fleet(args.inventory).entries()
        except FleetError as exc:
            print(f"stacksense servers list: {exc}", file=sys.stderr)
            return 1
        views = [
            {
                "name": e.get("name"),
                "mode": e.get("mode", "ssh"),
                "status": "suspended" if e.get("suspended") else "unknown",
                "last_heartbeat": None,
                "reason": None,
                "message": None,
            }
            for e in entries
        ]
    try:
        rules = _get_json(args.rules.rstrip("/") + "/api/v1/servers").get("servers") or {}
    except (requests.RequestException, ValueError, AttributeError):
        rules = {}
        notes.append(
            f"the rule engine at {args.rules} is not reachable: statuses are the "
            "exporter's (last probe only)"
        )
    for view in views:
        judged = rules.get(view["name"]) if isinstance(rules, dict) else None
        if isinstance(judged, dict) and judged.get("status") and view["status"] != "suspended":
            view["status"] = judged["status"]
            view["reason"] = judged.get("reason") or view.get("reason")
            view["message"] = (
                judged.get("reason_text") or judged.get("last_error") or view.get("message")
            )
            view["status_from"] = "rules"
    if args.json:
        print(json.dumps({"servers": views, "notes": notes}, indent=1))
        return 0
    now = time.time()
    rows = [("NAME", "STATUS", "MODE", "LAST HEARTBEAT", "REASON")]
    for v in views:
        beat = v.get("last_heartbeat")
        ago = "never" if beat is None else f"{_ago(now - beat)} ago"
        why = " ".join(x for x in (v.get("reason"), v.get("message")) if x)
        rows.append((v["name"], v["status"], v.get("mode", "ssh"), ago, why[:100]))
    widths = [max(len(str(r[i])) for r in rows) for i in range(4)]
    for r in rows:
        print(
            "  ".join(str(c).ljust(w) for c, w in zip(r[:4], widths, strict=True))
            + "  "
            + str(r[4])
        )
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    return 0


def _ago(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def _test(args: argparse.Namespace) -> int:
    """One probe with the inventory as written, in this process (no exporter needed)."""
    from exporter.app import ExporterApp
    from exporter.config import ConfigError
    from exporter.fleet import NotFound
    from exporter.fleet_api import FleetApi

    try:
        app = ExporterApp(str(args.inventory))
    except ConfigError as exc:
        print(f"stacksense servers test: {exc}", file=sys.stderr)
        return 1
    try:
        result = FleetApi(app).test(args.name)
    except NotFound as exc:
        print(f"stacksense servers test: {exc}", file=sys.stderr)
        return 1
    finally:
        app.close()
    if result.get("duration_seconds") is not None:
        head = (
            f"OK in {result['duration_seconds']:.3f}s"
            if result["success"]
            else f"FAILED after {result['duration_seconds']:.3f}s: {result['reason']}: "
            f"{result['message']}"
        )
        print(f"{args.name}: {head}")
    for line in result["summary"]:
        print(f"  {line}")
    return 0 if result["success"] else 1


def _import(args: argparse.Namespace, fleet: Fleet) -> int:
    try:
        text = args.file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        print(f"stacksense servers import: cannot read {args.file}: {exc}", file=sys.stderr)
        return 1
    tty = sys.stdout.isatty()

    def progress(done: int, total: int, row: ImportRow) -> None:
        line = f"[{done}/{total}] {row.name or '(no name)'}: {row.outcome}"
        if tty:
            print("\r" + line.ljust(70), end="" if done < total else "\n", flush=True)
        else:
            print(line, flush=True)

    def onboard_row(raw: dict[str, Any], password: str) -> str:
        return onboard_entry(fleet, raw, Secret(password))

    report = fleet.import_csv(text, progress=progress, onboard_row=onboard_row)
    counts = ", ".join(
        f"{report.count(o)} {o}" for o in ("added", "updated", "unchanged", "failed")
    )
    print(f"import: {len(report.rows)} rows: {counts}")
    for row in report.failed:
        print(f"  line {row.line} {row.name or '(no name)'}: {row.reason}")
    changed = any(r.outcome.startswith(("added", "updated")) for r in report.rows)
    status = _reload(args) if changed else 0
    return 1 if report.failed else status
