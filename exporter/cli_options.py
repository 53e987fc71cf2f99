"""Command-line options shared by the `stacksense` subcommands that talk to the exporter."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

DEFAULT_EXPORTER = "http://127.0.0.1:9816"


def add_exporter_options(
    parser: argparse.ArgumentParser, *, url_help: str, token_help: str
) -> None:
    """--exporter and --token-file, defaulting to $STACKSENSE_EXPORTER_URL / _TOKEN_FILE."""
    parser.add_argument(
        "--exporter",
        default=os.environ.get("STACKSENSE_EXPORTER_URL", DEFAULT_EXPORTER),
        help=f"{url_help} (default %(default)s)",
    )
    parser.add_argument(
        "--token-file",
        type=Path,
        default=os.environ.get("STACKSENSE_EXPORTER_TOKEN_FILE") or None,
        help=token_help,
    )
