"""The round-trip command's file reader and the split of its output into sections."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

import pytest

from exporter.collectors import ProbeContext
from exporter.collectors.base import Collector
from exporter.command import MARKER, READ_FILES, build_script, split_headed, split_sections
from exporter.exposition import Family


def no_families(sections: Mapping[str, str], ctx: ProbeContext) -> list[Family]:
    """A collector's parse step, for tests that only look at the script it contributes to."""
    return []


def read_files(*paths: Path | str) -> str:
    """The files section as the probe script prints it, run by this machine's /bin/sh."""
    script = (
        f"echo '{MARKER}files'; {READ_FILES} {' '.join(map(str, paths))} 2>/dev/null; "
        f"echo '{MARKER}end'"
    )
    return subprocess.run(
        ["/bin/sh", "-c", script], capture_output=True, text=True, timeout=10, check=True
    ).stdout


def test_every_readable_file_is_read_whatever_fails_before_it(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("1 2\n3\n")
    (tmp_path / "empty").write_text("")
    (tmp_path / "no-newline").write_text("x")
    unreadable = tmp_path / "dir"  # reading a directory fails (EISDIR) like sysfs' EINVAL
    unreadable.mkdir()
    (tmp_path / "z").write_text("last\n")
    out = split_sections(
        read_files(
            tmp_path / "a",
            unreadable,
            tmp_path / "missing",
            tmp_path / "empty",
            tmp_path / "no-newline",
            tmp_path / "z",
            tmp_path / "empty",
        )
    )
    assert out == {
        f"{tmp_path}/a": "1 2\n3\n",
        f"{tmp_path}/no-newline": "x\n",
        f"{tmp_path}/z": "last\n",
    }


def test_proc_files_are_read_whole() -> None:
    out = split_sections(read_files("/proc/self/status", "/proc/loadavg"))
    assert out["/proc/self/status"].startswith("Name:")
    assert out["/proc/self/status"].count("\n") > 10
    assert len(out["/proc/loadavg"].split()) == 5


def test_split_sections_keeps_sections_and_drops_the_banner() -> None:
    output = (
        f"Welcome!\n{MARKER}files\n==> /p/a <==\nA\n\n==> /p/b <==\nB\n"
        f"{MARKER}df\nFilesystem x\n#rc=0\n{MARKER}end\n"
    )
    assert split_sections(output) == {"/p/a": "A\n", "/p/b": "B\n", "df": "Filesystem x\n#rc=0"}


def test_split_headed_edge_cases() -> None:
    assert split_headed("==> /e <==\n\n==> /a <==\nA\n\n\n==> /last-empty <==") == {"/a": "A\n\n"}
    assert split_headed("") == {}


def test_older_grep_captures_still_split() -> None:
    output = f"{MARKER}files\n/proc/a:1\n/proc/a:2\n/proc/b:x\n{MARKER}end\n"
    assert split_sections(output) == {"/proc/a": "1\n2\n", "/proc/b": "x\n"}


def test_one_write_prints_the_same_bytes_in_one_go(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("1 2\n")
    (tmp_path / "b").write_text("b\n")
    unreadable = tmp_path / "dir"
    unreadable.mkdir()
    collector = Collector(
        "fake",
        no_families,
        files=(str(tmp_path / "a"), str(unreadable), str(tmp_path / "b"), f"{tmp_path}/missing*"),
        # a case pattern's `)` and an empty last line must survive the command substitution
        sections={"odd": "case x in x) echo 'a)b' ;; esac; printf 'c\\n\\n\\n'"},
    )
    plain = build_script([collector])
    one = build_script([collector], one_write=True)
    assert one != plain and "$(" in one
    for shell in ("/bin/sh", "/bin/bash"):
        outputs = [
            subprocess.run(
                [shell, "-c", script], capture_output=True, timeout=10, check=True
            ).stdout
            for script in (plain, one)
        ]
        assert outputs[0] == outputs[1], shell
        sections = split_sections(outputs[1].decode())
        assert sections == {f"{tmp_path}/a": "1 2\n", f"{tmp_path}/b": "b\n", "odd": "a)b\nc\n\n"}


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace")
def test_one_write_writes_the_output_once(tmp_path: Path) -> None:
    collector = Collector(
        "fake",
        no_families,
        files=("/proc/self/status", "/proc/nonexistent", "/proc/self/stat", "/proc/self/limits"),
    )
    writes = {}
    for one_write in (False, True):
        script = build_script([collector], one_write=one_write)
        trace = tmp_path / f"trace-{one_write}"
        with (tmp_path / "out").open("wb") as out:
            # -y names each fd's file: count the writes that reach our output file,
            # from the shell or any child
            subprocess.run(
                [
                    "strace",
                    "-f",
                    "-y",
                    "-e",
                    "trace=write",
                    "-o",
                    str(trace),
                    "/bin/sh",
                    "-c",
                    script,
                ],
                stdout=out,
                timeout=10,
                check=True,
            )
        writes[one_write] = sum(
            1 for line in trace.read_text().splitlines() if f"write(1<{tmp_path}/out>" in line
        )
    assert writes[True] == 1 < writes[False]
