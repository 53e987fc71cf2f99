"""The shell kept running on each pooled connection: one sshd session, many commands."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from exporter.config import Server, load_inventory
from exporter.errors import ProbeFailure
from exporter.remote_shell import END, WAKE_BYTES, QuietPipe
from exporter.ssh_pool import SshPool
from tests.exporter.harness import server_entry, write_inventory
from tests.peers.sshd import Sshd, SshdKeys, sshd
from tests.peers.util import wait_for


@pytest.fixture
def pool_and_server(tmp_path: Path, ssh_server: Sshd) -> Iterator[tuple[SshPool, Server]]:
    known = tmp_path / "known_hosts"
    known.write_text(ssh_server.known_hosts_line())
    inv_path = write_inventory(
        tmp_path / "servers.yml",
        [server_entry("h", ssh_server)],
        {"default": {"key_file": str(ssh_server.keys.client_key)}},
        known,
    )
    inventory = load_inventory(inv_path)
    pool = SshPool(inventory)
    try:
        yield pool, inventory.servers["h"]
    finally:
        pool.close()


def run(pool: SshPool, server: Server, command: str, seconds: float = 10.0) -> tuple[int, str]:
    result = pool.run(server, command, time.monotonic() + seconds)
    return result.exit_status, result.stdout


def test_commands_share_one_shell_and_keep_output_and_status(pool_and_server) -> None:
    pool, server = pool_and_server
    pids = {run(pool, server, "echo $$")[1] for _ in range(3)}
    assert len(pids) == 1, pids  # the same /bin/sh ran every command
    # Output without a final newline is kept byte for byte; the status is the command's.
    assert run(pool, server, "printf 'a b\\n\\nc'; false") == (1, "a b\n\nc")
    assert run(pool, server, "printf '%s' \"it's\"; (exit 7)") == (7, "it's")
    assert run(pool, server, "echo $$") == (0, pids.pop())


def test_commands_cannot_read_the_shells_input(pool_and_server) -> None:
    pool, server = pool_and_server
    # `cat` would otherwise swallow the lines that drive the shell and hang.
    assert run(pool, server, "cat; echo done", seconds=3) == (0, "done\n")
    assert run(pool, server, "echo next") == (0, "next\n")


def test_a_shell_killed_between_runs_is_replaced(pool_and_server) -> None:
    pool, server = pool_and_server
    pid = int(run(pool, server, "echo $$")[1])
    os.kill(pid, signal.SIGKILL)  # sshd runs on this machine, as does its shell
    wait_for(lambda: not os.path.exists(f"/proc/{pid}"), what="shell gone")
    status, out = run(pool, server, "echo $$")
    assert status == 0 and int(out) != pid


def test_a_deadline_closes_the_shell_and_the_next_run_starts_clean(pool_and_server) -> None:
    pool, server = pool_and_server
    first = run(pool, server, "echo $$")[1]
    started = time.monotonic()
    with pytest.raises(ProbeFailure) as failure:
        run(pool, server, "sleep 5; echo late", seconds=0.5)
    assert failure.value.reason == "timeout"
    assert time.monotonic() - started < 1.5
    status, out = run(pool, server, "echo $$")
    assert status == 0 and out != first  # a new shell, and nothing left over from `sleep`


def test_aes_gcm_is_preferred_and_ctr_still_works(
    pool_and_server, tmp_path: Path, ssh_keys: SshdKeys
) -> None:
    pool, server = pool_and_server
    run(pool, server, "true")
    transport = pool._slot("h").transport  # noqa: SLF001 - the negotiated cipher
    assert transport is not None and transport.remote_cipher == "aes128-gcm@openssh.com"
    with sshd(tmp_path / "old", ssh_keys, extra=["Ciphers aes128-ctr"]) as old:
        known = tmp_path / "old_known_hosts"
        known.write_text(old.known_hosts_line())
        inv = load_inventory(
            write_inventory(
                tmp_path / "old.yml",
                [server_entry("old", old)],
                {"default": {"key_file": str(ssh_keys.client_key)}},
                known,
            )
        )
        old_pool = SshPool(inv)
        try:
            assert run(old_pool, inv.servers["old"], "echo ok") == (0, "ok\n")
            old_transport = old_pool._slot("old").transport  # noqa: SLF001
            assert old_transport is not None and old_transport.remote_cipher == "aes128-ctr"
        finally:
            old_pool.close()


class CountingCondition:
    """Stands in for the pipe's condition variable: counts the wake-ups it is asked for."""

    def __init__(self, cv: threading.Condition) -> None:
        self.cv = cv
        self.wakeups = 0

    def notify_all(self) -> None:
        self.wakeups += 1
        self.cv.notify_all()

    def __getattr__(self, name: str) -> object:
        return getattr(self.cv, name)


def quiet_pipe() -> tuple[QuietPipe, CountingCondition]:
    pipe = QuietPipe()
    counter = CountingCondition(pipe._cv)  # noqa: SLF001 - what is under test
    pipe._cv = counter  # type: ignore[assignment]  # noqa: SLF001
    return pipe, counter


def test_quiet_pipe_wakes_the_reader_for_the_end_line_only() -> None:
    pipe, counter = quiet_pipe()
    pipe.feed(b"@@stacksense@@ files\n==> /proc/stat <==\ncpu 1 2 3\n")
    pipe.feed(b"x" * 4096)
    assert counter.wakeups == 0 and len(pipe) == 4096 + 50
    pipe.feed(f"\n{END} 7 ".encode())  # the end line split over two packets
    assert counter.wakeups == 0
    pipe.feed(b"0\n")
    assert counter.wakeups == 1
    assert pipe.read(1 << 20, timeout=0).endswith(f"{END} 7 0\n".encode())


def test_quiet_pipe_wakes_for_a_large_backlog_and_on_close() -> None:
    pipe, counter = quiet_pipe()
    pipe.feed(b"y" * (WAKE_BYTES - 1))
    assert counter.wakeups == 0
    pipe.feed(b"y")  # the reader must take it so that paramiko reopens the SSH window
    assert counter.wakeups == 1
    assert len(pipe.read(1 << 20, timeout=0)) == WAKE_BYTES
    pipe.feed(b"tail without an end line\n")
    pipe.close()
    assert counter.wakeups == 2
    assert pipe.read(1 << 20, timeout=0) == b"tail without an end line\n"
    assert pipe.read(1 << 20, timeout=0) == b""


def test_a_command_printing_more_than_a_window_completes(pool_and_server) -> None:
    # 3 MiB > paramiko's 2 MiB window: only completes if the reader is woken before the end.
    status, out = run(*pool_and_server, "head -c 3145728 /dev/zero | tr '\\0' 'z'; echo")
    assert status == 0 and len(out) == 3145728 + 1 and set(out) == {"z", "\n"}
