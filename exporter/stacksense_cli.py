"""`stacksense`: one command for every part (onboard, servers, agent, exporter, rules, router).

`onboard` and `servers` (exporter.fleet_cli) are implemented here; the others hand
their arguments to the part's own entry point, imported only when asked for, so a
machine that runs only the agent needs nothing else installed.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable
from pathlib import Path

# subcommand -> (module, function, what it is)
DELEGATES = {
    "agent": ("exporter.agent.cli", "main", "push heartbeats from this host (stacksense-agent)"),
    "exporter": ("exporter.main", "main", "the SSH exporter (stacksense-exporter)"),
    "rules": ("rules.cli", "main", "the rule engine (stacksense-rules)"),
    "router": ("alert_router.cli", "main", "the alert router (stacksense-router)"),
}


def _onboard_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "onboard",
        help="deploy the monitoring key to a server and add it to the inventory",
        description="Log in once with a password, append the monitoring public key to "
        "~/.ssh/authorized_keys, check that key login works, and add the server "
        "to the inventory. The password is used for that one login only.",
    )
    p.add_argument("name", help="the server's name in the inventory")
    p.add_argument("--host", required=True, help="host name or address to connect to")
    p.add_argument("--port", type=int, default=22)
    p.add_argument("--user", help="remote user (default: the inventory's defaults.user, or root)")
    pw = p.add_mutually_exclusive_group(required=True)
    pw.add_argument("--password-env", metavar="VAR", help="environment variable holding it")
    pw.add_argument("--password-file", type=Path, metavar="FILE", help="file holding it")
    pw.add_argument("--password-prompt", action="store_true", help="ask on the terminal")
    p.add_argument(
        "--key",
        type=Path,
        help="private key to deploy (default: the credentials "
        "entry's key_file, else keys/stacksense_ed25519 beside the inventory; "
        "generated when missing)",
    )
    p.add_argument(
        "--credentials",
        default="default",
        help="inventory credentials entry to use or create (default: default)",
    )
    p.add_argument(
        "--inventory",
        type=Path,
        default=Path("servers.yml"),
        help="inventory file to update (default: ./servers.yml)",
    )
    p.add_argument(
        "--known-hosts",
        type=Path,
        help="known_hosts file (default: the inventory's known_hosts, else ~/.ssh/known_hosts)",
    )
    p.add_argument(
        "--trust-on-first-use",
        action="store_true",
        help="pin an unknown host key instead of refusing it",
    )
    p.add_argument("--jump", metavar="NAME", help="reach the host through this inventory server")
    p.add_argument("--module", help="collection module for the server entry")
    p.add_argument(
        "--label",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="label for the server entry (repeatable)",
    )
    p.add_argument("--timeout", type=float, default=15.0, help="SSH timeout in seconds")


def parser() -> argparse.ArgumentParser:
    """The `stacksense` argument parser."""
    top = argparse.ArgumentParser(prog="stacksense", description=__doc__)
    top.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _onboard_parser(sub)
    from exporter import fleet_cli  # not imported for delegated parts (an agent-only host)

    fleet_cli.add_parser(sub)
    from exporter import diagnose_cli

    diagnose_cli.add_parser(sub)
    for name, (_, _, help_text) in DELEGATES.items():
        # add_help=False: `stacksense agent --help` shows the part's own help.
        sub.add_parser(name, help=help_text, add_help=False)
    return top


def main(argv: list[str] | None = None) -> int:
    """Entry point of `stacksense`."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # Everything after a delegated subcommand belongs to that part's own parser.
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        i += 2 if argv[i] == "--log-level" else 1
    if i < len(argv) and argv[i] in DELEGATES:
        return _delegate(argv[i], argv[i + 1 :])
    args = parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    if args.command == "servers":
        # paramiko logs a failed handshake as an ERROR traceback; the command says why.
        logging.getLogger("paramiko").setLevel(logging.CRITICAL)
        from exporter import fleet_cli

        return fleet_cli.run(args)
    if args.command == "diagnose":
        logging.getLogger("paramiko").setLevel(logging.CRITICAL)
        from exporter import diagnose_cli

        return diagnose_cli.run(args)
    return _onboard(args)


def _delegate(command: str, rest: list[str]) -> int:
    module_name, func_name, _ = DELEGATES[command]
    try:
        entry: Callable[[list[str]], int | None] = getattr(
            importlib.import_module(module_name), func_name
        )
    except (ImportError, AttributeError) as exc:
        print(
            f"stacksense: `{command}` is not available here: cannot import "
            f"{module_name}.{func_name} ({exc})",
            file=sys.stderr,
        )
        return 2
    return int(entry(rest) or 0)


def _onboard(args: argparse.Namespace) -> int:
    # Imported here so that `stacksense agent` does not need paramiko.
    from exporter.onboarding.keys import HostKeyRefused, KeyProblem
    from exporter.onboarding.onboard import OnboardError, OnboardRequest, onboard, read_password

    labels: dict[str, str] = {}
    for item in args.label:
        key, sep, value = item.partition("=")
        if not sep or not key:
            print(f"stacksense onboard: --label {item!r}: expected KEY=VALUE", file=sys.stderr)
            return 2
        labels[key] = value
    try:
        password = read_password(args.password_env, args.password_file, args.password_prompt)
        result = onboard(
            OnboardRequest(
                name=args.name,
                host=args.host,
                port=args.port,
                user=args.user,
                password=password,
                inventory=args.inventory,
                key=args.key,
                credentials=args.credentials,
                known_hosts=args.known_hosts,
                trust_on_first_use=args.trust_on_first_use,
                jump=args.jump,
                module=args.module,
                labels=labels,
                timeout_seconds=args.timeout,
            )
        )
    except (OnboardError, KeyProblem, HostKeyRefused) as exc:
        print(f"stacksense onboard: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # a key or inventory file that cannot be written, for example
        print(f"stacksense onboard: {exc}", file=sys.stderr)
        return 1
    print(
        f"{args.name}: key {result.key_file} "
        f"{'deployed' if result.key_added else 'was already authorized'}"
        f"{' (newly generated)' if result.key_generated else ''}; "
        f"host key in {result.known_hosts}; inventory {result.inventory} updated"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
