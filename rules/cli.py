"""`stacksense-rules`: run the engine, check its config, export rules, backtest, detect."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from rules.conditions import Condition, load_conditions
from rules.config import ConfigError, EngineConfig, load_config
from stacksense_common import cli_flags

EXIT_CONFIG = 2


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["detect"]:
        # The detector's own command line (owned by rules/detect_csv.py).
        from rules import detect_csv

        return detect_csv.main(args_list[1:])
    parser = _parser()
    args = parser.parse_args(args_list)
    cli_flags.configure_logging(args.log_level)
    try:
        code: int = args.func(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    return code


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="stacksense-rules", description=__doc__)
    cli_flags.add_log_level(p, aliases=("--log-level",))
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the engine (HTTP on the listen address)")
    _config_flags(run)
    cli_flags.add_listen_address(
        run,
        default=None,
        aliases=("--listen",),
        help="HOST:PORT to serve HTTP on (overrides listen_address)",
    )
    run.add_argument("--once", action="store_true", help="run one cycle, print it, exit")
    run.set_defaults(func=_run)

    check = sub.add_parser("check-config", help="validate the config and conditions files")
    _config_flags(check)
    check.add_argument("--conditions", type=Path, help="a conditions file (overrides config)")
    check.add_argument(
        "--prometheus",
        metavar="URL",
        nargs="?",
        const="",
        help="also have Prometheus (URL, or the configured one) parse every condition's expression",
    )
    check.set_defaults(func=_check)

    export = sub.add_parser(
        "export-prometheus-rules", help="write Prometheus rule files and a PrometheusRule manifest"
    )
    _config_flags(export)
    export.add_argument("--conditions", type=Path)
    export.add_argument("--out", type=Path, default=Path("."), help="output directory")
    export.add_argument("--namespace", help="metadata.namespace of the PrometheusRule")
    export.set_defaults(func=_export)

    from rules import backtest

    backtest.add_parser(sub)
    sub.add_parser("detect", help="score a timestamp,value CSV (see `detect --help`)")
    return p


def _config_flags(parser: argparse.ArgumentParser) -> None:
    """--config.file (alias --config) and --log.level, which may also come after the
    subcommand (`stacksense-rules run --config.file X --log.level debug`)."""
    cli_flags.add_config_file(
        parser, aliases=("--config",), type=Path, help="engine config YAML (default: built-in)"
    )
    cli_flags.add_log_level(parser, aliases=("--log-level",), inherit=True)


def _conditions(args: argparse.Namespace) -> tuple[EngineConfig, list[Condition]]:
    cfg = load_config(args.config)
    path = getattr(args, "conditions", None) or cfg.conditions_file
    return cfg, load_conditions(path, include_defaults=cfg.include_default_conditions)


def _check(args: argparse.Namespace) -> int:
    cfg, conds = _conditions(args)
    print(
        f"config OK: Prometheus {cfg.prometheus_url}, {len(cfg.receivers)} receiver(s), "
        f"{len(conds)} condition(s): {', '.join(c.alert for c in conds)}"
    )
    if args.prometheus is None:
        return 0
    from rules.promapi import PrometheusClient, PrometheusError, PrometheusQueryError

    client = PrometheusClient(
        args.prometheus or cfg.prometheus_url, timeout=cfg.prometheus_timeout_seconds, retries=0
    )
    bad = 0
    for cond in conds:
        try:
            client.query(cond.expr)
        except PrometheusQueryError as exc:
            bad += 1
            print(
                f"error: condition {cond.alert}: expr {cond.expr!r}: {exc.message}", file=sys.stderr
            )
        except PrometheusError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    if bad:
        return EXIT_CONFIG
    print(f"all {len(conds)} condition expressions accepted by Prometheus")
    return 0


def _export(args: argparse.Namespace) -> int:
    from rules import export

    cfg, conds = _conditions(args)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / export.RULES_FILE).write_text(export.rules_file(cfg, conds))
    (args.out / export.MANIFEST_FILE).write_text(
        export.prometheus_rule_manifest(cfg, conds, namespace=args.namespace)
    )
    print(f"wrote {args.out / export.RULES_FILE} and {args.out / export.MANIFEST_FILE}")
    return 0


def _run(args: argparse.Namespace) -> int:
    import json

    from rules.server import RulesService, snapshot

    service = RulesService(args.config)
    if args.once:
        report = service.engine.run_cycle()
        print(json.dumps(snapshot(service.engine), indent=1))
        return 0 if report.ok else 1
    try:
        host, port = service.start(args.listen)
    except OSError as exc:
        print(
            f"error: cannot listen on {args.listen or service.engine.config.listen_address}: "
            f"{exc.strerror or exc}",
            file=sys.stderr,
        )
        return 1
    logging.getLogger("rules").info(
        "listening on %s:%d, Prometheus %s", host, port, service.engine.config.prometheus_url
    )
    done = threading.Event()

    def reload(_sig: int, _frame: object) -> None:
        try:
            service.reload()
        except ConfigError as exc:
            logging.getLogger("rules").error("reload failed, previous config kept: %s", exc)

    signal.signal(signal.SIGHUP, reload)
    signal.signal(signal.SIGTERM, lambda _s, _f: done.set())
    signal.signal(signal.SIGINT, lambda _s, _f: done.set())
    done.wait()
    service.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
