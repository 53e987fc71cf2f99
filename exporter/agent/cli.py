"""`stacksense-agent` (and `stacksense agent`): flags, logging, signals, then the send loop."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from dataclasses import replace
from pathlib import Path

from exporter.agent.config import AgentConfigError, load_config, redact_url
from exporter.agent.delivery import run

log = logging.getLogger("stacksense.agent")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="stacksense-agent",
        description="Push heartbeats and host metrics to StackSense.",
        epilog="The token is read from STACKSENSE_TOKEN, STACKSENSE_TOKEN_FILE, --token-file or "
        "the config file; there is deliberately no --token flag (it would show in ps).",
    )
    parser.add_argument("--config", type=Path, help="YAML file with url, server, token_file, ...")
    parser.add_argument("--url", help="exporter base URL, e.g. http://monitor:9816")
    parser.add_argument("--server", help="this server's name in the inventory")
    parser.add_argument("--token-file", help="file holding this server's push token")
    parser.add_argument(
        "--interval",
        type=float,
        dest="interval_seconds",
        help="seconds between heartbeats (default 30)",
    )
    parser.add_argument(
        "--timeout", type=float, dest="timeout_seconds", help="HTTP timeout in seconds (default 10)"
    )
    parser.add_argument(
        "--once",
        action="store_true",
        help="send one heartbeat (retrying transient errors) and exit 0/1",
    )
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Entry point of `stacksense-agent` (and `stacksense agent`)."""
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # urllib3 logs every retry with the full URL at debug; keep its noise out of ours.
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    overrides = {
        k: getattr(args, k)
        for k in ("url", "server", "token_file", "interval_seconds", "timeout_seconds")
    }
    try:
        config = load_config(args.config, os.environ, overrides)
    except AgentConfigError as exc:
        print(f"stacksense-agent: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    if args.once:
        # Cron-friendly: a few quick retries, never the full backoff cap.
        config = replace(config, max_backoff_seconds=min(config.max_backoff_seconds, 8.0))
        return 0 if run(config, stop, once=True) else 1
    _stop_on_signals(stop)
    log.info(
        "sending heartbeats for %s to %s every %gs",
        config.server,
        redact_url(config.url),
        config.interval_seconds,
    )
    run(config, stop)
    return 0


def _stop_on_signals(stop: threading.Event) -> None:
    for name in ("SIGTERM", "SIGINT"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), lambda *_: stop.set())
