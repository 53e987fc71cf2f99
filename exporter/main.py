"""`stacksense-exporter`: serve /probe, /sd and /metrics for the inventory (or the local host)."""

from __future__ import annotations

import argparse
import contextlib
import logging
import resource
import signal
import socket
import sys
import threading
from pathlib import Path
from types import FrameType

from exporter.app import ExporterApp
from exporter.check_config import check_inventory
from exporter.config import ConfigError
from exporter.server import DEFAULT_MAX_CONNECTIONS, ExporterHTTPServer
from stacksense_common import cli_flags

log = logging.getLogger("exporter")

# Descriptors kept for everything but client connections: the listening socket,
# logs, the known_hosts file, paramiko's pipes; plus one per pooled SSH connection.
FD_RESERVE = 64


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="stacksense-exporter", description=__doc__)
    cli_flags.add_config_file(
        parser, help="inventory (servers.yml); without it the local host is monitored"
    )
    cli_flags.add_listen_address(parser, default="0.0.0.0:9816")
    cli_flags.add_log_level(parser)
    parser.add_argument(
        "--web.max-connections",
        dest="max_connections",
        type=int,
        default=DEFAULT_MAX_CONNECTIONS,
        help="client connections served at once; more get 503 "
        "(default %(default)s; lowered to fit the open-file limit)",
    )
    parser.add_argument(
        "--web.reload-token-file",
        dest="reload_token_file",
        default=None,
        help="file holding the bearer token POST /-/reload needs; without it "
        "only loopback clients may reload",
    )
    parser.add_argument(
        "--web.api-token-file",
        dest="api_token_file",
        default=None,
        help="file holding the bearer token that writes to /api/v1/servers "
        "need (default: the reload token file); without either, only "
        "loopback clients may change servers",
    )
    parser.add_argument(
        "--local-name",
        default=None,
        help="server name of the local host in embedded mode (default: hostname)",
    )
    parser.add_argument(
        "--check-config",
        action="store_true",
        help="validate the inventory, keys, certificates and files, and exit",
    )
    return parser.parse_args(argv)


def configure_logging(level: str) -> None:
    cli_flags.configure_logging(level)
    # paramiko logs every failed handshake at ERROR as a traceback, one record per
    # line (~25 lines); the probe already logs one line saying why. Its records
    # show only when debugging.
    logging.getLogger("paramiko").setLevel(logging.DEBUG if level == "debug" else logging.CRITICAL)


def raise_fd_limit() -> int:
    """Raise the open-file soft limit to the hard limit; return the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft == resource.RLIM_INFINITY:
        target = hard
    else:
        target = max(soft, hard)
    if target != soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the open-file limit from %d to %d: %s", soft, target, exc)
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


def connection_cap(requested: int, fd_limit: int, servers: int) -> int:
    """The client-connection cap, below what the open-file limit leaves for clients."""
    budget = fd_limit - FD_RESERVE - servers
    if requested <= budget:
        return requested
    cap = max(4, budget)
    log.warning(
        "--web.max-connections %d lowered to %d: the open-file limit is %d (%d servers)",
        requested,
        cap,
        fd_limit,
        servers,
    )
    return cap


def _listen_address(text: str) -> tuple[str, int] | None:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        return None
    return host.strip("[]") or "0.0.0.0", int(port)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging(args.log_level)
    try:
        app = ExporterApp(args.config, local_name=args.local_name)
    except ConfigError as exc:
        print(f"stacksense-exporter: {exc}", file=sys.stderr)
        return 1 if args.check_config else 2
    token_file = Path(args.reload_token_file) if args.reload_token_file else None
    if args.check_config:
        problems = check_inventory(app.inventory, token_file)
        app.close()
        for line in problems:
            print(f"stacksense-exporter: {line}", file=sys.stderr)
        if problems:
            return 1
        print(f"OK: {len(app.inventory.servers)} servers")
        return 0
    address = _listen_address(args.listen)
    if address is None:
        print(
            f"exporter: invalid listen address {args.listen!r} (expected HOST:PORT)",
            file=sys.stderr,
        )
        app.close()
        return 1
    if args.max_connections < 1:
        print("exporter: --web.max-connections must be at least 1", file=sys.stderr)
        app.close()
        return 1
    cap = connection_cap(args.max_connections, raise_fd_limit(), len(app.inventory.servers))
    try:
        server = ExporterHTTPServer(
            address,
            app,
            max_connections=cap,
            reload_token_file=token_file,
            api_token_file=Path(args.api_token_file) if args.api_token_file else None,
        )
    except OSError as exc:
        reason = (
            (exc.strerror or str(exc)).lower()
            if not isinstance(exc, socket.gaierror)
            else f"cannot resolve host ({exc.strerror})"
        )
        print(f"exporter: cannot listen on {args.listen}: {reason}", file=sys.stderr)
        app.close()
        return 1

    def on_hup(signum: int, frame: FrameType | None) -> None:
        # Reload off the signal handler's stack: it takes locks.
        threading.Thread(target=_reload, args=(app,), daemon=True).start()

    def on_term(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGHUP, on_hup)
    signal.signal(signal.SIGTERM, on_term)
    mode = "local host" if app.inventory.local else f"{len(app.inventory.servers)} servers"
    log.info("listening on %s (%s, at most %d connections)", args.listen, mode, cap)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        app.close()
    return 0


def _reload(app: ExporterApp) -> None:
    with contextlib.suppress(ConfigError):  # app.reload logged it in one line
        app.reload()


if __name__ == "__main__":
    sys.exit(main())
