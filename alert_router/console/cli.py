"""`stacksense-router users add/list/remove/set-role/set-password`: console accounts."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from alert_router.config import load_config
from alert_router.console.users import ROLES, UserError, Users, generate_password
from alert_router.store import Store


def _users(config_path: str) -> Users:
    cfg = load_config(config_path)
    store: Store
    if cfg.storage_url:
        from alert_router.store_pg import PgStore

        store = PgStore(cfg.storage_url, password=cfg.storage_password)
    else:
        store = Store(cfg.storage_path, synchronous=cfg.storage_synchronous)
    return Users(store)


def _read_password(path: str) -> str:
    text = sys.stdin.read() if path == "-" else Path(path).read_text()
    return text.rstrip("\r\n")


def _write_secret(path: str, text: str) -> None:
    """Write `text` to a new 0600 file (never readable by others, not even for a moment)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _new_password(args: argparse.Namespace) -> tuple[str, bool]:
    """(password, generated?) from --password-file, or a new random one."""
    if args.password_file:
        return _read_password(args.password_file), False
    return generate_password(), True


def cmd_add(args: argparse.Namespace) -> int:
    users = _users(args.config)
    if args.if_missing and users.get(args.name) is not None:
        print(f"user {args.name} exists; nothing changed")
        return 0
    password, generated = _new_password(args)
    users.add(args.name, args.role, password)
    if generated and args.write_password:
        _write_secret(args.write_password, f"{args.name}\n{password}\n")
        print(
            f"user {args.name} ({args.role}) added; name and password written to "
            f"{args.write_password} (mode 0600)"
        )
    elif generated:
        print(f"user {args.name} ({args.role}) added; password (shown once): {password}")
    else:
        print(f"user {args.name} ({args.role}) added")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    for user in _users(args.config).list():
        print(f"{user.name}\t{user.role}")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    if not _users(args.config).remove(args.name):
        print(f"error: no user {args.name!r}", file=sys.stderr)
        return 1
    print(f"user {args.name} removed")
    return 0


def cmd_set_role(args: argparse.Namespace) -> int:
    if not _users(args.config).set_role(args.name, args.role):
        print(f"error: no user {args.name!r}", file=sys.stderr)
        return 1
    print(f"user {args.name} is now {args.role}")
    return 0


def cmd_set_password(args: argparse.Namespace) -> int:
    password, generated = _new_password(args)
    if not _users(args.config).set_password(args.name, password):
        print(f"error: no user {args.name!r}", file=sys.stderr)
        return 1
    if generated and args.write_password:
        _write_secret(args.write_password, f"{args.name}\n{password}\n")
        print(f"password of {args.name} changed; written to {args.write_password}")
    elif generated:
        print(f"password of {args.name} changed; new password (shown once): {password}")
    else:
        print(f"password of {args.name} changed")
    return 0


def _guard(func: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        try:
            result: int = func(args)
            return result
        except UserError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except OSError as exc:
            print(f"error: {exc.filename}: {exc.strerror}", file=sys.stderr)
            return 2

    return run


def add_users_parser(sub: Any) -> None:
    """Add the `users` command to the router CLI's subparsers."""
    users = sub.add_parser("users", help="console accounts (viewer, operator, admin)")
    cmds = users.add_subparsers(dest="users_command", required=True)
    add = cmds.add_parser("add", help="add a user; prints a generated password once")
    add.add_argument("name")
    add.add_argument("--role", choices=ROLES, required=True)
    add.add_argument("--password-file", help="read the password from this file ('-': stdin)")
    add.add_argument(
        "--write-password",
        metavar="FILE",
        help="write the generated name and password to FILE (0600) instead of printing it",
    )
    add.add_argument(
        "--if-missing", action="store_true", help="do nothing (exit 0) when the user exists"
    )
    add.set_defaults(func=_guard(cmd_add))
    cmds.add_parser("list", help="users and roles").set_defaults(func=_guard(cmd_list))
    remove = cmds.add_parser("remove", help="remove a user (their sessions end)")
    remove.add_argument("name")
    remove.set_defaults(func=_guard(cmd_remove))
    role = cmds.add_parser("set-role", help="change a user's role")
    role.add_argument("name")
    role.add_argument("role", choices=ROLES)
    role.set_defaults(func=_guard(cmd_set_role))
    pw = cmds.add_parser("set-password", help="set or generate a new password")
    pw.add_argument("name")
    pw.add_argument("--password-file")
    pw.add_argument("--write-password", metavar="FILE")
    pw.set_defaults(func=_guard(cmd_set_password))
