"""The engine's state file: JSON, written atomically (temp file, fsync, rename).

It holds what must survive a restart so that a restart neither re-fires nor
forgets: the status of every server and since when, the for-duration progress
of conditions, the alert book (with original start times), the anomaly
trackers, the grace deadline, and the time of the last cycle (which doubles
as the engine's heartbeat for downtime detection).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

STATE_VERSION = 1


def load_state(path: Path) -> dict[str, Any]:
    """Read the state file; a missing file is an empty state, a corrupt one is set aside."""
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        # Keep the broken file for inspection rather than silently losing it.
        aside = path.with_name(path.name + ".corrupt")
        log.error("state file %s unreadable (%s); moved to %s, starting fresh", path, exc, aside)
        try:
            path.replace(aside)
        except OSError:
            pass
        return {}
    if not isinstance(raw, dict) or raw.get("version") != STATE_VERSION:
        log.warning("state file %s has an unknown version; starting fresh", path)
        return {}
    return raw


def save_state(path: Path, state: dict[str, Any]) -> None:
    """Write the state atomically so a crash mid-write leaves the previous file intact."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps({**state, "version": STATE_VERSION}, separators=(",", ":"))
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
