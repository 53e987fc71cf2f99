"""`stacksense-exporter`: serve /probe, /sd and /metrics for the inventory (or the local host)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from types import FrameType

from exporter.app import ExporterApp
from exporter.config import ConfigError
from exporter.server import ExporterHTTPServer

log = logging.getLogger("exporter")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="stacksense-exporter", description=__doc__)
    parser.add_argument("--config.file", dest="config", default=None,
                        help="inventory (servers.yml); without it the local host is monitored")
    parser.add_argument("--web.listen-address", dest="listen", default="0.0.0.0:9816",
                        help="address to listen on (default %(default)s)")
    parser.add_argument("--local-name", default=None,
                        help="server name of the local host in embedded mode (default: hostname)")
    parser.add_argument("--check-config", action="store_true",
                        help="validate the inventory and exit")
    parser.add_argument("--log.level", dest="log_level", default="info",
                        choices=["debug", "info", "warning", "error"])
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        app = ExporterApp(args.config, local_name=args.local_name)
    except ConfigError as exc:
        print(f"stacksense-exporter: {exc}", file=sys.stderr)
        return 2
    if args.check_config:
        print(f"OK: {len(app.inventory.servers)} servers")
        return 0
    host, _, port = args.listen.rpartition(":")
    server = ExporterHTTPServer((host or "0.0.0.0", int(port)), app)

    def on_hup(signum: int, frame: FrameType | None) -> None:
        # Reload off the signal handler's stack: it takes locks.
        threading.Thread(target=_reload, args=(app,), daemon=True).start()

    def on_term(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGHUP, on_hup)
    signal.signal(signal.SIGTERM, on_term)
    mode = "local host" if app.inventory.local else f"{len(app.inventory.servers)} servers"
    log.info("listening on %s (%s)", args.listen, mode)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        app.close()
    return 0


def _reload(app: ExporterApp) -> None:
    try:
        app.reload()
    except ConfigError as exc:
        log.error("reload failed, keeping the previous inventory: %s", exc)


if __name__ == "__main__":
    sys.exit(main())
