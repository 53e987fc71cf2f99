"""`make test`: the suite as two pytest processes side by side.

The flow tests (an operator's week, the status lifecycle against a live Prometheus,
`make run` itself) spend their minutes waiting on real clocks: scrape intervals,
offline thresholds, a Prometheus kept down for two minutes. They use little CPU, so
they run in a second pytest process beside the rest of the suite, each process with
its own temporary directory (pytest prunes old ones per directory). The rest's output
streams live; the flow tests' output follows it. Any arguments run one plain pytest
with them instead.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FLOW_TESTS = [
    "tests/test_lifecycle_e2e.py",
    "tests/rules/test_lifecycle_live.py",
    "tests/exporter/test_service_alert_e2e.py",
    "tests/test_make_run.py",
]


def main(argv: list[str]) -> int:
    pytest = [sys.executable, "-m", "pytest"]
    if argv:
        return subprocess.call([*pytest, *argv], cwd=ROOT)
    base = Path(tempfile.mkdtemp(prefix="stacksense-tests-"))
    flow_log = base / "flow.log"
    with flow_log.open("wb") as log:
        flow = subprocess.Popen(
            [*pytest, "-q", "--durations=10", f"--basetemp={base / 'flow'}", *FLOW_TESTS],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=os.environ.copy(),
        )
        rest = subprocess.call(
            [
                *pytest,
                "-q",
                "--durations=15",
                f"--basetemp={base / 'rest'}",
                *(f"--ignore={t}" for t in FLOW_TESTS),
            ],
            cwd=ROOT,
        )
        flow_code = flow.wait()
    print(f"\n===== flow tests ({' '.join(FLOW_TESTS)}) =====", flush=True)
    sys.stdout.write(flow_log.read_text(errors="replace"))
    print(f"\nrest of the suite: exit {rest}; flow tests: exit {flow_code}")
    return rest or flow_code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
