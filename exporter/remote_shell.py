"""One `/bin/sh` kept running on a pooled SSH connection; each command is one line written to it.

Why: an exec channel per probe costs the monitored host a new sshd session
child and a shell (most of its per-probe budget) and costs the exporter a
channel open, an exec request and an exit-status round trip. Instead, each
connection runs `exec /bin/sh` once (the login shell runs only then; no rc
file runs per probe). A command is sent once as the body of a shell function;
every run after that writes one short line: the function call and an end line
carrying a serial number and the function's exit status. The output is read
up to that end line, so no per-probe process is forked for the shell itself.

The function runs in the shell itself, not in a subshell (which would cost a
fork per probe), with stdin from /dev/null so that no command can eat the lines
meant for the shell. Any failure or a deadline closes the channel, so a hung
command never poisons the next run. A host that ignores the shell (sshd's
ForceCommand) just runs its own command and ends the channel: its output and
exit status are then taken as they come, exactly as with an exec channel.
Commands come only from the exporter's collectors (fixed strings) and the
inventory's checks (validated and quoted, exporter.checks). A prelude of shell
variable assignments (numbers the exporter computed: log offsets) may precede a
run's call line.
"""

from __future__ import annotations

import array
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import paramiko
from paramiko.buffered_pipe import BufferedPipe

from exporter.errors import ProbeFailure

START_COMMAND = "exec /bin/sh 2>/dev/null"
END = "@@stacksense-done@@"
READ_CHUNK = 1 << 20  # take whatever paramiko has buffered in one call
# Wake the reader before the end line when this much is buffered: paramiko only
# reopens the SSH window as the reader takes data (2 MiB by default).
WAKE_BYTES = 256 * 1024
_END_TAIL = len(END) + 32  # the end line: END, a serial, an exit status
# Output read per probe at most (a module's max_output_bytes overrides it), far
# above what the default module prints; a login shell or forced command that prints
# without end must not grow the exporter: past this the probe fails ("command",
# detail "output_too_large") and the channel is closed.
DEFAULT_MAX_OUTPUT = 4 * 1024 * 1024


if TYPE_CHECKING:
    _Pipe = BufferedPipe[bytes]  # generic only in paramiko's stubs
else:
    _Pipe = BufferedPipe


class QuietPipe(_Pipe):
    """A channel's stdout buffer that wakes its reader once per command, not once per packet.

    paramiko's BufferedPipe notifies the reading thread on every SSH packet
    (~14 per probe); each wake-up is a GIL hand-off and a futex round trip for
    data the reader can do nothing with until the end line is there. This one
    notifies when the end line may have arrived, when WAKE_BYTES are waiting,
    or when the channel closes (close() is unchanged).
    """

    # BufferedPipe's own state (not in paramiko's stubs).
    _lock: threading.Lock
    _cv: threading.Condition
    _event: threading.Event | None
    _buffer: array.array[int]

    def feed(self, data: bytes) -> None:
        with self._lock:
            if self._event is not None:
                self._event.set()
            buffer = self._buffer
            buffer.frombytes(data)
            if (data[-1:] == b"\n" and END.encode() in buffer[-_END_TAIL:].tobytes()) or len(
                buffer
            ) >= WAKE_BYTES:
                self._cv.notify_all()


@dataclass
class CommandResult:
    exit_status: int
    stdout: str


class RemoteShell:
    """A shell on one session channel; `run(command, deadline)` runs a command in it."""

    def __init__(
        self, channel: paramiko.Channel, where: str, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.channel = channel
        self.where = where
        self.clock = clock
        self.runs = 0
        self.alive = True
        self._functions: dict[str, str] = {}

    @classmethod
    def start(
        cls,
        transport: paramiko.Transport,
        where: str,
        deadline: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> RemoteShell:
        """Open a session channel running `/bin/sh` (one exec, once per connection)."""
        remaining = deadline - clock()
        if remaining <= 0:
            raise ProbeFailure("timeout", f"{where}: deadline passed before the command ran")
        try:
            channel = transport.open_session(timeout=remaining)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            if transport.is_active() and "timeout" not in str(exc).lower():
                raise ProbeFailure(
                    "command", f"{where}: cannot open a session ({type(exc).__name__})"
                ) from None
            raise ProbeFailure("timeout", f"{where}: timeout opening channel") from None
        try:
            channel.in_buffer = QuietPipe()  # before any data can arrive
            channel.settimeout(max(0.01, deadline - clock()))
            channel.exec_command(START_COMMAND)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            channel.close()
            raise ProbeFailure(
                "timeout", f"{where}: cannot start the shell ({type(exc).__name__})"
            ) from None
        return cls(channel, where, clock)

    def usable(self) -> bool:
        """Whether the shell still runs (it may have been killed or timed out since)."""
        channel = self.channel
        return self.alive and not (
            channel.closed or channel.eof_received or channel.exit_status_ready()
        )

    def close(self) -> None:
        """Close the channel (the remote shell gets EOF and ends)."""
        self.alive = False
        self.channel.close()

    def run(
        self, command: str, deadline: float, max_output: int = DEFAULT_MAX_OUTPUT, prelude: str = ""
    ) -> CommandResult:
        """Run `command` in the shell before `deadline`; the channel is closed on any failure."""
        ok = False
        try:
            result = self._run(command, deadline, max_output, prelude)
            ok = True
            return result
        except TimeoutError:
            raise ProbeFailure(
                "timeout", f"{self.where}: command did not finish before the deadline"
            ) from None
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise ProbeFailure(
                "timeout",
                f"{self.where}: connection lost during the command ({type(exc).__name__})",
            ) from None
        finally:
            if not ok or not self.alive:
                self.close()

    def _run(
        self, command: str, deadline: float, max_output: int, prelude: str = ""
    ) -> CommandResult:
        channel = self.channel
        name = self._functions.get(command)
        definition = ""
        if name is None:
            name = f"ss_f{len(self._functions)}"
            definition = f"{name}() {{\n{command}\n}}\n"
            self._functions[command] = name
        self.runs += 1
        marker = f"\n{END} {self.runs} ".encode()
        remaining = deadline - self.clock()
        if remaining <= 0:
            raise TimeoutError
        channel.settimeout(remaining)
        # The prelude (variable assignments that change every probe, e.g. log offsets)
        # goes on the call line, so the function itself is defined only once.
        try:
            channel.sendall(
                f"{definition}{prelude}{name} </dev/null; "
                f"printf '\\n{END} %s %s\\n' {self.runs} $?\n".encode()
            )
        except OSError:
            # A host that ignores the shell (ForceCommand) may have printed its output and
            # closed the channel before our line went out: that output is the answer.
            if not channel.eof_received:
                raise
        buf = bytearray()
        while True:
            remaining = deadline - self.clock()
            if remaining <= 0:
                raise TimeoutError
            channel.settimeout(remaining)
            data = channel.recv(READ_CHUNK)  # socket.timeout is TimeoutError
            if not data:
                return self._ended(bytes(buf), deadline)
            buf += data
            if len(buf) > max_output:
                raise ProbeFailure(
                    "command",
                    f"{self.where}: output larger than {max_output} "
                    "bytes (module max_output_bytes)",
                    "output_too_large",
                )
            # The end line is the last thing the shell writes: look only at the tail.
            if data[-1:] == b"\n":
                at = buf.find(marker, max(0, len(buf) - len(data) - len(marker)))
                if at >= 0:
                    status = buf[at + len(marker) :].strip()
                    return CommandResult(
                        int(status) if status.isdigit() else -1, buf[:at].decode("utf-8", "replace")
                    )

    def _ended(self, output: bytes, deadline: float) -> CommandResult:
        """The channel closed before the end line: the host ran its own command (or died)."""
        self.alive = False
        if not self.channel.status_event.wait(max(0.0, deadline - self.clock())):
            raise TimeoutError
        return CommandResult(self.channel.exit_status, output.decode("utf-8", "replace"))
