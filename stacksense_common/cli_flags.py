"""The flags every service takes, spelled as Prometheus and its exporters spell them.

    --config.file PATH          the service's configuration
    --web.listen-address H:P    where it serves HTTP
    --log.level LEVEL           debug, info, warning or error

Older spellings stay as aliases (`--config`, `--listen`, `--log-level`), so scripts and
manifests written for them keep working. Each flag lands in the same attribute in every
service: `config`, `listen`, `log_level`.

On a subcommand (`stacksense-rules run`, `stacksense-router serve`) the same flag may also
be on the main parser: `inherit=True` then leaves the attribute alone unless the flag is
given after the subcommand, so `tool --log.level debug run` and `tool run --log.level
debug` mean the same (argparse would otherwise reset it to the subcommand's default).
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Sequence
from typing import Any

CONFIG = "--config.file"
LISTEN = "--web.listen-address"
LOG_LEVEL = "--log.level"
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _default(value: Any, inherit: bool) -> Any:
    return argparse.SUPPRESS if inherit else value


def add_config_file(
    parser: argparse.ArgumentParser,
    *,
    help: str,  # noqa: A002
    default: Any = None,
    aliases: Sequence[str] = (),
    type: Callable[[str], Any] = str,  # noqa: A002
    inherit: bool = False,
) -> None:
    parser.add_argument(
        CONFIG,
        *aliases,
        dest="config",
        default=_default(default, inherit),
        type=type,
        metavar="PATH",
        help=help,
    )


def add_listen_address(
    parser: argparse.ArgumentParser,
    *,
    default: str | None,
    aliases: Sequence[str] = (),
    help: str | None = None,  # noqa: A002
    inherit: bool = False,
) -> None:
    text = help or "address to serve HTTP on, HOST:PORT"
    if default is not None:
        text += " (default %(default)s)"
    parser.add_argument(
        LISTEN,
        *aliases,
        dest="listen",
        default=_default(default, inherit),
        metavar="HOST:PORT",
        help=text,
    )


def add_log_level(
    parser: argparse.ArgumentParser,
    *,
    aliases: Sequence[str] = (),
    default: str = "info",
    inherit: bool = False,
) -> None:
    parser.add_argument(
        LOG_LEVEL,
        *aliases,
        dest="log_level",
        default=_default(default, inherit),
        choices=LOG_LEVELS,
        help="log level (default %(default)s)"
        if not inherit
        else "log level (default: the one given before the subcommand, or info)",
    )


def configure_logging(level: str) -> None:
    """Log to stderr at `level`, one line per record, the same format in every service."""
    logging.basicConfig(level=level.upper(), format=LOG_FORMAT)
