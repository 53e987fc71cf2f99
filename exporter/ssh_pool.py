"""Persistent SSH connections, one per server, with keepalive, reconnect backoff and deadlines.

Why a pool: an SSH handshake costs tens of milliseconds of CPU on both sides;
a probe on an open connection costs one line written to the shell kept running
on it (exporter.remote_shell). Each server has one
connection guarded by its own lock, so a hanging host only ever blocks its own
probes; a global semaphore bounds how many handshakes and commands run at once.
TCP_NODELAY is set on every socket: without it each command stalls ~40 ms on
delayed ACKs.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import paramiko

from exporter.config import Credentials, Inventory, Server
from exporter.errors import ProbeFailure
from exporter.hostkeys import KnownHosts
from exporter.remote_shell import DEFAULT_MAX_OUTPUT, CommandResult, RemoteShell
from stacksense_common import backoff

__all__ = ["CommandResult", "SshPool", "load_private_key"]

log = logging.getLogger(__name__)

KEEPALIVE_SECONDS = 30
BACKOFF_INITIAL = 1.0
BACKOFF_MAX = 30.0
PREFERRED_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")


@dataclass
class _Slot:
    """One server's connection and its reconnect state."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    transport: paramiko.Transport | None = None
    shell: RemoteShell | None = None  # lives on `transport`; closed with it
    failures: int = 0
    retry_at: float = 0.0
    last_failure: ProbeFailure | None = None
    fingerprint: tuple[object, ...] = ()


def _classify_os_error(exc: OSError, where: str) -> ProbeFailure:
    if isinstance(exc, TimeoutError | socket.timeout):
        return ProbeFailure("timeout", f"{where}: connection timed out")
    if isinstance(exc, ConnectionRefusedError) or exc.errno == errno.ECONNREFUSED:
        return ProbeFailure("refused", f"{where}: connection refused")
    if isinstance(exc, socket.gaierror):
        return ProbeFailure("unreachable", f"{where}: cannot resolve host ({exc.strerror})", "dns")
    if isinstance(exc, ConnectionResetError):
        return ProbeFailure("refused", f"{where}: connection reset")
    return ProbeFailure("unreachable", f"{where}: {exc.strerror or type(exc).__name__}")


def _close(transport: paramiko.Transport) -> None:
    """Close a transport for good: shut the socket down first.

    paramiko's close() alone can leave its reader thread, the TCP connection and
    the remote sshd session alive; shutdown() wakes the reader at once, which
    is why the socket may keep a long timeout (see _connect) yet close at once.
    """
    sock = transport.sock
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
    transport.close()


def load_private_key(creds: Credentials) -> paramiko.PKey:
    """Load the key file (and its certificate); the passphrase never reaches an error text."""
    assert creds.key_file is not None
    # paramiko's stubs say str, but cryptography underneath wants bytes.
    passphrase: Any = creds.passphrase.reveal().encode() if creds.passphrase else None
    try:
        key = paramiko.PKey.from_path(creds.key_file, password=passphrase)
    except (paramiko.SSHException, ValueError, TypeError) as exc:
        # An encrypted key without a passphrase: PasswordRequiredException for PEM
        # keys, TypeError (from cryptography) for OpenSSH-format ones.
        if passphrase is None and isinstance(exc, paramiko.PasswordRequiredException | TypeError):
            raise ProbeFailure(
                "auth",
                f"key {creds.key_file} is encrypted and no passphrase "
                f"is configured (credentials {creds.name})",
            ) from None
        msg = "wrong passphrase or unreadable key" if passphrase else type(exc).__name__
        raise ProbeFailure("auth", f"cannot load key {creds.key_file} ({msg})") from None
    except OSError as exc:
        raise ProbeFailure("auth", f"cannot read key {creds.key_file}: {exc.strerror}") from None
    if creds.certificate_file is not None:
        try:
            key.load_certificate(str(creds.certificate_file))
        except (OSError, ValueError, paramiko.SSHException) as exc:
            raise ProbeFailure(
                "auth", f"cannot load certificate {creds.certificate_file}: {type(exc).__name__}"
            ) from None
    return key


class SshPool:
    """Connections to the inventory's servers; `run(server, command, deadline)` is the API."""

    def __init__(
        self, inventory: Inventory, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._inventory = inventory
        self._known_hosts = KnownHosts(inventory.known_hosts)
        self._slots: dict[str, _Slot] = {}
        self._slots_lock = threading.Lock()
        self._gate = threading.BoundedSemaphore(inventory.max_concurrency)
        self._clock = clock

    # ------------------------------------------------------------ public

    def update_inventory(self, inventory: Inventory) -> None:
        """Swap the inventory; connections whose settings changed are closed lazily.

        Servers that left the inventory lose everything kept for them: their
        connection is closed and their backoff and last failure are forgotten,
        so a server added back later starts afresh and nothing grows with churn.
        """
        self._inventory = inventory
        with self._slots_lock:
            gone = [name for name in self._slots if name not in inventory.servers]
            dropped = [self._slots.pop(name) for name in gone]
            for slot in self._slots.values():
                slot.retry_at = 0.0  # a reload may have fixed what failed
        for slot in dropped:
            # A probe still running on it keeps its own references and fails or ends.
            if slot.transport is not None:
                _close(slot.transport)
        if inventory.known_hosts != self._known_hosts.path:
            self._known_hosts = KnownHosts(inventory.known_hosts)

    def open_connections(self) -> int:
        with self._slots_lock:
            slots = list(self._slots.values())
        return sum(1 for s in slots if s.transport is not None and s.transport.is_active())

    def close(self) -> None:
        with self._slots_lock:
            slots = list(self._slots.values())
            self._slots.clear()
        for slot in slots:
            if slot.transport is not None:
                _close(slot.transport)

    def connection_id(self, server: Server) -> int | None:
        """An id of the shell the next probe of `server` would reuse; None if it needs a new one.

        Per-connection work (host facts) is done when this changes.
        """
        with self._slots_lock:
            slot = self._slots.get(server.name)
        shell = slot.shell if slot is not None else None
        return id(shell) if shell is not None and shell.usable() else None

    def slot_names(self) -> set[str]:
        """Servers the pool keeps state for (connections, backoff)."""
        with self._slots_lock:
            return set(self._slots)

    def run(
        self,
        server: Server,
        command: str,
        deadline: float,
        *,
        max_output: int = DEFAULT_MAX_OUTPUT,
        prelude: str = "",
    ) -> CommandResult:
        """Run `command` with /bin/sh on `server` before `deadline` (monotonic seconds).

        More than `max_output` bytes of output fail the probe ("command",
        detail "output_too_large") and close the shell, so memory stays bounded.
        """
        slot = self._slot(server.name)
        if not slot.lock.acquire(timeout=max(0.0, deadline - self._clock())):
            raise ProbeFailure("timeout", f"{server.name}: previous probe still running")
        try:
            if not self._gate.acquire(timeout=max(0.0, deadline - self._clock())):
                raise ProbeFailure("timeout", f"{server.name}: too many probes in flight")
            try:
                return self._run_locked(slot, server, command, deadline, max_output, prelude)
            finally:
                self._gate.release()
        finally:
            slot.lock.release()

    # ------------------------------------------------------------ internals

    def _slot(self, name: str) -> _Slot:
        with self._slots_lock:
            slot = self._slots.get(name)
            if slot is None:
                slot = self._slots[name] = _Slot()
            return slot

    def _settings(self, server: Server) -> tuple[object, ...]:
        creds = self._inventory.credentials.get(server.credentials)
        jump = self._inventory.server(server.jump) if server.jump else None
        return (server.host, server.port, server.user, creds, jump)

    def exec_channel(
        self, server: Server, command: str, deadline: float, *, max_output: int
    ) -> tuple[int | None, str]:
        """Run `command` on its own exec channel of the server's pooled connection.

        For long, rare commands (exporter.diagnose): the server's lock is held only
        to (re)connect, so probes keep running on the pooled shell meanwhile. The
        output is returned even when the deadline cuts the command (exit status
        None then), and is truncated at `max_output` bytes.
        """
        slot = self._slot(server.name)
        if not slot.lock.acquire(timeout=max(0.0, deadline - self._clock())):
            raise ProbeFailure("timeout", f"{server.name}: previous probe still running")
        try:
            transport = self._ensure_transport(slot, server, deadline)
        finally:
            slot.lock.release()
        where = f"{server.name} ({server.host}:{server.port})"
        try:
            channel = transport.open_session(timeout=max(0.05, deadline - self._clock()))
            channel.exec_command(command)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise ProbeFailure(
                "command", f"{where}: cannot open a session ({type(exc).__name__})"
            ) from None
        buf = bytearray()
        status: int | None = None
        try:
            while len(buf) < max_output:
                remaining = deadline - self._clock()
                if remaining <= 0:
                    break
                channel.settimeout(remaining)
                try:
                    data = channel.recv(65536)
                except TimeoutError:
                    break
                if not data:
                    if channel.status_event.wait(max(0.0, deadline - self._clock())):
                        status = channel.recv_exit_status()
                    break
                buf += data
        except (paramiko.SSHException, OSError, EOFError):
            pass  # what was read so far is the (partial) answer
        finally:
            channel.close()
        return status, bytes(buf[:max_output]).decode("utf-8", "replace")

    def _run_locked(
        self,
        slot: _Slot,
        server: Server,
        command: str,
        deadline: float,
        max_output: int,
        prelude: str = "",
    ) -> CommandResult:
        transport = self._ensure_transport(slot, server, deadline)
        try:
            return self._run_in_shell(
                slot, transport, server, command, deadline, max_output, prelude
            )
        except ProbeFailure as failure:
            if failure.reason == "timeout":
                # A channel that timed out mid-session means a dead or blackholed
                # link: drop the connection so the next probe reconnects.
                _close(transport)
                slot.transport = slot.shell = None
            raise

    def _ensure_transport(self, slot: _Slot, server: Server, deadline: float) -> paramiko.Transport:
        """The slot's live connection, made now if needed (the slot's lock is held)."""
        settings = self._settings(server)
        if slot.transport is not None and (
            not slot.transport.is_active() or slot.fingerprint != settings
        ):
            _close(slot.transport)
            slot.transport = slot.shell = None
        if slot.transport is None:
            now = self._clock()
            # Back off only from network failures; a host-key refusal is re-checked
            # every probe so that fixing known_hosts takes effect at once.
            if (
                now < slot.retry_at
                and slot.last_failure is not None
                and slot.last_failure.reason != "host_key"
            ):
                # The same message as the failure itself: the message is a label value of
                # stacksense_probe_last_error_info, which must not change every probe.
                last = slot.last_failure
                again = ProbeFailure(last.reason, str(last), last.detail)
                again.retry_in = slot.retry_at - now
                raise again
            try:
                slot.transport = self._connect(server, deadline)
                slot.fingerprint = settings
            except ProbeFailure as failure:
                slot.failures += 1
                # From the failure, not from the attempt: a handshake that timed out took
                # the whole deadline, longer than the first backoff step.
                slot.retry_at = backoff.next_attempt_at(
                    self._clock(), slot.failures, initial=BACKOFF_INITIAL, maximum=BACKOFF_MAX
                )
                slot.last_failure = failure
                raise
            slot.failures, slot.last_failure = 0, None
        return slot.transport

    def _open_socket(self, server: Server, deadline: float) -> socket.socket | paramiko.Channel:
        where = f"{server.name} ({server.host}:{server.port})"
        timeout = max(0.05, min(server.connect_timeout_seconds, deadline - self._clock()))
        if server.jump:
            jump = self._inventory.server(server.jump)
            assert jump is not None  # validated at load
            jump_slot = self._slot(jump.name)
            with jump_slot.lock:
                if jump_slot.transport is None or not jump_slot.transport.is_active():
                    jump_slot.transport = self._connect(jump, deadline)
                    jump_slot.shell = None
                    jump_slot.fingerprint = self._settings(jump)
                try:
                    return jump_slot.transport.open_channel(
                        "direct-tcpip",
                        (server.host, server.port),
                        ("127.0.0.1", 0),
                        timeout=timeout,
                    )
                except paramiko.ChannelException as exc:
                    raise ProbeFailure(
                        "unreachable",
                        f"{where}: jump host {jump.name} cannot reach it ({exc.text})",
                    ) from None
                except (paramiko.SSHException, OSError) as exc:
                    raise ProbeFailure(
                        "timeout", f"{where}: via jump host {jump.name}: {type(exc).__name__}"
                    ) from None
        try:
            sock = socket.create_connection((server.host, server.port), timeout=timeout)
        except OSError as exc:
            raise _classify_os_error(exc, where) from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def _connect(self, server: Server, deadline: float) -> paramiko.Transport:
        where = f"{server.name} ({server.host}:{server.port})"
        creds = self._inventory.credentials.get(server.credentials)
        if creds is None:
            raise ProbeFailure("auth", f"{server.name}: no credentials {server.credentials!r}")
        sock = self._open_socket(server, deadline)
        transport = paramiko.Transport(sock)
        ok = False
        try:
            remaining = max(0.05, deadline - self._clock())
            transport.handshake_timeout = remaining
            transport.auth_timeout = remaining
            options = transport.get_security_options()
            # AES-GCM first: one AEAD call per packet instead of AES-CTR plus an HMAC
            # (docs/decisions/exporter-performance.md). Servers without it
            # (OpenSSH < 6.2) still get paramiko's other ciphers.
            options.ciphers = (
                *PREFERRED_CIPHERS,
                *(c for c in options.ciphers if c not in PREFERRED_CIPHERS),
            )
            pinned = self._known_hosts.preferred_key_types(server.host, server.port)
            if pinned:
                options.key_types = [t for t in options.key_types if t in pinned] or pinned
            # start_client(timeout=) returns silently when the time is up (a host that
            # accepts TCP and never sends a banner); the next call then raises outside
            # any handler. So wait on our own event: not set by the deadline = timeout.
            negotiated = threading.Event()
            # paramiko's own banner wait a little longer than ours, so ours decides.
            transport.banner_timeout = remaining + 1.0
            try:
                transport.start_client(event=negotiated)
            except (paramiko.SSHException, OSError, EOFError) as exc:
                raise self._negotiation_failure(exc, where) from None
            if not negotiated.wait(remaining):
                raise ProbeFailure(
                    "timeout", f"{where}: no SSH banner or handshake before the deadline"
                )
            if not transport.is_active():
                raise self._negotiation_failure(
                    transport.get_exception() or paramiko.SSHException("negotiation failed"), where
                )
            key = transport.get_remote_server_key()
            self._known_hosts.verify(
                server.name,
                server.host,
                server.port,
                key,
                trust_on_first_use=server.trust_on_first_use,
            )
            self._authenticate(transport, server, creds)
            transport.set_keepalive(KEEPALIVE_SECONDS)
            # paramiko polls its socket every 0.1 s, which adds up to a real share of a
            # core idle across a large fleet. Keepalives only need a wake-up well
            # within their interval,
            # and _close() shuts the socket down, which wakes the reader at once.
            sock.settimeout(KEEPALIVE_SECONDS / 2)
            ok = True
            return transport
        finally:
            if not ok:
                _close(transport)

    def _negotiation_failure(self, exc: BaseException, where: str) -> ProbeFailure:
        if isinstance(exc, TimeoutError | socket.timeout):
            return ProbeFailure("timeout", f"{where}: SSH handshake timed out")
        text = str(exc).lower()
        if "timeout" in text or "timed out" in text:
            return ProbeFailure("timeout", f"{where}: SSH handshake timed out")
        if isinstance(exc, ConnectionResetError | EOFError) or "reset" in text or "eof" in text:
            return ProbeFailure("refused", f"{where}: connection closed during SSH handshake")
        return ProbeFailure(
            "unreachable", f"{where}: SSH negotiation failed ({type(exc).__name__})"
        )

    def _authenticate(
        self, transport: paramiko.Transport, server: Server, creds: Credentials
    ) -> None:
        where = f"{server.name} ({server.user}@{server.host}:{server.port})"
        tried: list[str] = []
        try:
            if creds.key_file is not None:
                tried.append("key" if creds.certificate_file is None else "certificate")
                key = load_private_key(creds)
                try:
                    transport.auth_publickey(server.user, key)
                    return
                except paramiko.AuthenticationException:
                    pass
            if creds.agent:
                tried.append("agent")
                agent = paramiko.Agent()
                try:
                    for agent_key in agent.get_keys():
                        try:
                            transport.auth_publickey(server.user, agent_key)
                            return
                        except paramiko.AuthenticationException:
                            continue
                finally:
                    agent.close()
            if creds.password is not None:
                tried.append("password")
                try:
                    transport.auth_password(server.user, creds.password.reveal())
                    return
                except paramiko.AuthenticationException:
                    pass
        except paramiko.SSHException as exc:
            if "timeout" in str(exc).lower():
                raise ProbeFailure("timeout", f"{where}: authentication timed out") from None
            raise ProbeFailure(
                "auth", f"{where}: authentication error ({type(exc).__name__})"
            ) from None
        raise ProbeFailure(
            "auth", f"{where}: authentication failed (tried {', '.join(tried) or 'nothing'})"
        )

    def _run_in_shell(
        self,
        slot: _Slot,
        transport: paramiko.Transport,
        server: Server,
        command: str,
        deadline: float,
        max_output: int,
        prelude: str = "",
    ) -> CommandResult:
        where = f"{server.name} ({server.host}:{server.port})"
        while True:
            if slot.shell is not None and not slot.shell.usable():
                slot.shell.close()
                slot.shell = None
            fresh = slot.shell is None
            if slot.shell is None:
                slot.shell = RemoteShell.start(transport, where, deadline, self._clock)
            shell = slot.shell
            try:
                result = shell.run(command, deadline, max_output, prelude)
            finally:
                if not shell.alive:
                    slot.shell = None
            # A reused shell that ended without a byte (killed between probes, an idle
            # limit on the host) gets one fresh start; a fresh one that does so is the answer.
            if shell.alive or fresh or result.stdout:
                return result
