"""`stacksense-router`: serve, check-config, routes test, test-notify, list-receivers, render."""

from __future__ import annotations

import argparse
import os
import select
import socket
import sys
from collections.abc import Sequence
from typing import Any

from gunicorn.workers.gthread import ThreadWorker

from alert_router.config import RouterConfig, load_config
from alert_router.errors import ConfigError
from stacksense_common import cli_flags

DEFAULT_CONFIG = "router.yml"
WORKER_CLASS = "alert_router.cli.KeepAliveWorker"
KEEPALIVE_LINGER = 0.05  # seconds a pool thread waits for a connection's next request
# `serve --log.level` passes the level to the workers' own logging (alert_router.wsgi).
LOG_LEVEL_ENV = "STACKSENSE_ROUTER_LOG_LEVEL"


class KeepAliveWorker(ThreadWorker):  # type: ignore[misc]  # gunicorn has no types
    """gunicorn's gthread worker, but a thread keeps a busy keep-alive connection briefly.

    gthread hands every request from its poller thread to a pool thread and back, which
    cost more CPU than the router's own work for single-alert requests
    (docs/decisions/router-performance.md). A client posting again within
    KEEPALIVE_LINGER is served by the same thread, unless other connections are waiting
    for a thread; an idle connection goes back to the poller as in gthread.
    """

    def handle(self, conn: Any) -> Any:
        result = super().handle(conn)
        while result is True and self.alive and not getattr(conn, "is_http2", False):
            # Fairness: other connections waiting for a thread get it back at once.
            if self.tpool._work_queue.qsize():
                break
            if not conn.parser.unreader.buf.getvalue():
                # gthread leaves `data_ready` set after a request; without clearing it
                # wait_for_data answers True at once and the thread blocks reading an
                # idle connection, so each idle browser would hold a thread.
                conn.data_ready = False
                if not _wait_for_data(conn, KEEPALIVE_LINGER):
                    break
            result = super().handle(conn)
        return result


def _wait_for_data(conn: Any, timeout: float) -> bool:
    """gthread's TConn.wait_for_data with poll(2) instead of a new epoll selector.

    This runs once per request on a busy keep-alive connection: a poll object costs one
    system call where a selector costs four (create, register, wait, close).
    """
    poller = select.poll()
    try:
        poller.register(conn.sock, select.POLLIN)
        ready = poller.poll(timeout * 1000)
    except (OSError, ValueError):  # the socket was closed: as gthread, not readable
        return False
    if ready:
        conn.data_ready = True
    return bool(ready)


def _config(path: str) -> RouterConfig:
    return load_config(path)


def cmd_check_config(args: argparse.Namespace) -> int:
    cfg = _config(args.config)
    routes = cfg.route.walk()
    print(
        f"{args.config}: OK ({len(cfg.receivers)} receivers, {len(routes)} routes, "
        f"{len(cfg.inhibit_rules)} inhibit rules)"
    )
    return 0


def _parse_labels(items: Sequence[str]) -> dict[str, str]:
    labels = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise SystemExit(f"error: label {item!r}: want name=value")
        labels[name] = value.strip('"')
    return labels


def cmd_routes_test(args: argparse.Namespace) -> int:
    cfg = _config(args.config)
    labels = _parse_labels(args.labels)
    routes = cfg.route.match(labels)
    receivers: list[str] = []
    for route in routes:
        if route.receiver not in receivers:
            receivers.append(route.receiver)
    if args.verbose:
        for route in routes:
            print(
                f"route {route.route_id}: receiver={route.receiver} "
                f"group_key={route.group_key(labels)} group_wait={route.group_wait:g}s "
                f"group_interval={route.group_interval:g}s "
                f"repeat_interval={route.repeat_interval:g}s"
            )
    print(",".join(receivers))
    if args.expect is not None:
        expected = [r for r in args.expect.split(",") if r]
        if expected != receivers:
            print(f"expected {','.join(expected)}, got {','.join(receivers)}", file=sys.stderr)
            return 1
    return 0


def cmd_list_receivers(args: argparse.Namespace) -> int:
    from alert_router.notify import build_notifiers

    cfg = _config(args.config)
    for i, (name, receiver) in enumerate(cfg.receivers.items()):
        notifiers = build_notifiers(
            receiver, path=f"receivers[{i}]", global_config=cfg.global_config
        )
        kinds = ", ".join(n.kind for n in notifiers) or "(no integrations)"
        print(f"{name}: {kinds}")
    return 0


def cmd_test_notify(args: argparse.Namespace) -> int:
    from alert_router.notify import NotifyError, build_notifiers, sample_notification

    cfg = _config(args.config)
    if args.receiver not in cfg.receivers:
        print(
            f"error: receiver {args.receiver!r} is not defined (have: {', '.join(cfg.receivers)})",
            file=sys.stderr,
        )
        return 2
    names = list(cfg.receivers)
    notifiers = build_notifiers(
        cfg.receivers[args.receiver],
        path=f"receivers[{names.index(args.receiver)}]",
        global_config=cfg.global_config,
    )
    data = sample_notification()
    data = type(data)(**{**data.__dict__, "receiver": args.receiver})
    failed = 0
    for notifier in notifiers:
        try:
            notifier.notify(data)
            print(f"{args.receiver}/{notifier.kind}: sent")
        except NotifyError as exc:
            failed += 1
            print(f"{args.receiver}/{notifier.kind}: FAILED ({exc.reason}): {exc}", file=sys.stderr)
    return 1 if failed else 0


def cmd_render(args: argparse.Namespace) -> int:
    from alert_router.notify import render_template, sample_notification

    print(render_template(args.template, sample_notification()))
    return 0


def _cannot_listen(listen: str) -> str | None:
    """Why `host:port` cannot be bound right now (None when it can, or is not host:port)."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or listen.startswith("unix:"):
        return None
    host = host.strip("[]") or "0.0.0.0"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds
        try:
            sock.bind((host, int(port)))
        except OSError as exc:
            return (exc.strerror or str(exc)).lower()
    return None


def cmd_serve(args: argparse.Namespace) -> int:
    """Run under gunicorn (gthread) as in production."""
    os.environ["STACKSENSE_ROUTER_CONFIG"] = os.path.abspath(args.config)
    config = _config(args.config)  # fail fast with a clear message before gunicorn starts
    if config.storage_url:
        # Likewise an unreachable database: one clear line instead of workers failing to boot.
        from alert_router.store_pg import PgStore, StoreConnectError

        try:
            PgStore(config.storage_url, password=config.storage_password).close()
        except StoreConnectError as exc:  # names the database, never the password
            print(f"error: {exc}", file=sys.stderr)
            return 1
    problem = _cannot_listen(args.listen)
    if problem:  # gunicorn would retry five times and print ten lines
        print(f"router: cannot listen on {args.listen}: {problem}", file=sys.stderr)
        return 1
    argv = [
        "gunicorn",
        "--bind",
        args.listen,
        "--worker-class",
        WORKER_CLASS,
        "--threads",
        str(args.threads),
        "--workers",
        str(args.workers),
        "--access-logfile",
        "-" if args.access_log else "/dev/null",
        "--log-level",
        args.log_level,
        "alert_router.wsgi:app",
    ]
    os.environ[LOG_LEVEL_ENV] = args.log_level
    os.execvp(sys.executable, [sys.executable, "-m", *argv])
    return 0  # pragma: no cover


def cmd_trace(args: argparse.Namespace) -> int:
    """Print what happened to one alert occurrence, read from the router's store."""
    from alert_router.app import _open_store as open_store
    from alert_router.trace import VALID, describe

    if not VALID.match(args.trace_id):
        print("error: trace id: must be 1-64 characters of A-Z a-z 0-9 _ . -", file=sys.stderr)
        return 2
    store = open_store(_config(args.config))
    try:
        stages = store.trace(args.trace_id)
    finally:
        store.close()
    if not stages:
        print(f"trace {args.trace_id}: not found", file=sys.stderr)
        return 1
    print(f"trace {args.trace_id}")
    print(describe(stages))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stacksense-router", description="StackSense alert router"
    )
    config_help = "router config YAML (default: $STACKSENSE_ROUTER_CONFIG or router.yml)"
    cli_flags.add_config_file(
        parser,
        aliases=("--config", "-c"),
        help=config_help,
        default=os.environ.get("STACKSENSE_ROUTER_CONFIG", DEFAULT_CONFIG),
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the router under gunicorn")
    # Also after `serve`, so the router takes the same command line as the other services.
    cli_flags.add_config_file(serve, aliases=("--config", "-c"), help=config_help, inherit=True)
    cli_flags.add_listen_address(serve, default="0.0.0.0:9818", aliases=("--listen",))
    cli_flags.add_log_level(serve)
    serve.add_argument("--threads", type=int, default=8)
    serve.add_argument("--workers", type=int, default=2)
    serve.add_argument("--access-log", action="store_true")
    serve.set_defaults(func=cmd_serve)
    sub.add_parser("check-config", help="validate the config").set_defaults(func=cmd_check_config)
    routes = sub.add_parser("routes", help="route tree tools")
    routes_sub = routes.add_subparsers(dest="routes_command", required=True)
    rtest = routes_sub.add_parser("test", help="which receivers a label set reaches")
    rtest.add_argument("labels", nargs="+", help="name=value ...")
    rtest.add_argument("--expect", help="comma-separated receivers; exit 1 if different")
    rtest.add_argument("--verbose", "-v", action="store_true")
    rtest.set_defaults(func=cmd_routes_test)
    tn = sub.add_parser("test-notify", help="send a sample notification to a receiver")
    tn.add_argument("receiver")
    tn.set_defaults(func=cmd_test_notify)
    sub.add_parser("list-receivers", help="receivers and their integrations").set_defaults(
        func=cmd_list_receivers
    )
    render = sub.add_parser("render", help="render a template with sample data")
    render.add_argument("template")
    render.set_defaults(func=cmd_render)
    trace = sub.add_parser("trace", help="what happened to one alert (its trace id)")
    trace.add_argument("trace_id")
    trace.set_defaults(func=cmd_trace)
    from alert_router.console.cli import add_users_parser  # console accounts

    add_users_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `stacksense-router`."""
    args = build_parser().parse_args(argv)
    try:
        result: int = args.func(args)
        return result
    except ConfigError as exc:
        print(f"error: config {args.config}: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:  # e.g. an unknown template name from the notifiers
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
