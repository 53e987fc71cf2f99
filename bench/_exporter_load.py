"""Load generation for the exporter benchmark: keep-alive HTTP clients, open and closed loop.

The client speaks just enough HTTP/1.1 over a raw socket (pre-built request
bytes, Content-Length framing) so that the generator costs tens of
microseconds per request and is never the bottleneck on a 2-core machine;
http.client costs several times more. Its own CPU is measured with
getrusage(RUSAGE_SELF) so it is never confused with the exporter's.
"""

from __future__ import annotations

import itertools
import queue
import resource
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

SUCCESS = b"\nstacksense_probe_success 1\n"


class KeepAliveClient:
    """One persistent HTTP/1.1 connection to host:port (loopback only)."""

    def __init__(self, host: str, port: int) -> None:
        self.addr = (host, port)
        self.sock: socket.socket | None = None
        self.buf = b""

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(self.addr, timeout=60)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock, self.buf = sock, b""
        return sock

    def get(self, request: bytes) -> tuple[int, bytes]:
        """Send a pre-built GET request; return (status, body)."""
        sock = self.sock or self._connect()
        try:
            sock.sendall(request)
            buf = self.buf
            while (end := buf.find(b"\r\n\r\n")) < 0:
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionError("server closed the connection")
                buf += chunk
            head = buf[:end]
            rest = buf[end + 4 :]
            lower = head.lower()
            if b"transfer-encoding: chunked" in lower:
                body, self.buf = self._chunked(sock, rest)
                return int(head[9:12]), body
            length = 0
            pos = lower.find(b"content-length:")
            if pos >= 0:
                eol = head.find(b"\r\n", pos)
                length = int(head[pos + 15 : eol if eol >= 0 else len(head)])
            rest = self._fill(sock, rest, length)
            self.buf = rest[length:]
            return int(head[9:12]), rest[:length]
        except (OSError, ValueError):
            self.close()
            raise

    @staticmethod
    def _fill(sock: socket.socket, buf: bytes, size: int) -> bytes:
        while len(buf) < size:
            chunk = sock.recv(max(65536, size - len(buf)))
            if not chunk:
                raise ConnectionError("server closed the connection mid-body")
            buf += chunk
        return buf

    def _chunked(self, sock: socket.socket, buf: bytes) -> tuple[bytes, bytes]:
        """Decode a chunked body (Go's net/http sends one for large /metrics)."""
        parts: list[bytes] = []
        while True:
            while (eol := buf.find(b"\r\n")) < 0:
                buf = self._fill(sock, buf, len(buf) + 1)
            size = int(buf[:eol].split(b";")[0], 16)
            buf = self._fill(sock, buf[eol + 2 :], size + 2)
            if size == 0:
                return b"".join(parts), buf[2:]
            parts.append(buf[:size])
            buf = buf[size + 2 :]

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def request_bytes(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode()


def probe_requests(names: Sequence[str]) -> list[bytes]:
    return [request_bytes(f"/probe?target={name}") for name in names]


@dataclass
class Outcome:
    """What one load phase observed."""

    sent: int = 0
    ok: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    wall_seconds: float = 0.0
    generator_cpu_seconds: float = 0.0

    def record(self, latency: float, status: int, body: bytes, check: bool) -> None:
        self.latencies.append(latency)
        if status == 200 and (not check or SUCCESS in body):
            self.ok += 1
        else:
            self.failed += 1
            if len(self.errors) < 5:
                self.errors.append(f"HTTP {status}: {body[:300]!r}")

    def error(self, exc: BaseException) -> None:
        self.failed += 1
        if len(self.errors) < 5:
            self.errors.append(repr(exc))


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0–100); NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def _self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def open_loop(
    host: str,
    port: int,
    requests: Sequence[bytes],
    rate: float,
    count: int,
    *,
    workers: int = 32,
    check: bool = True,
) -> Outcome:
    """Send `count` requests at a fixed `rate` (request i due at t0 + i/rate), cycling `requests`.

    Latency runs from the scheduled time, not the send time, so a stalled
    exporter shows up as latency instead of silently slowing the schedule
    (no coordinated omission).
    """
    out = Outcome()
    lock = threading.Lock()
    jobs: queue.SimpleQueue[tuple[bytes, float] | None] = queue.SimpleQueue()

    def worker() -> None:
        client = KeepAliveClient(host, port)
        while (job := jobs.get()) is not None:
            request, due = job
            try:
                status, body = client.get(request)
                done = time.perf_counter()
                with lock:
                    out.record(done - due, status, body, check)
            except (OSError, ValueError) as exc:
                with lock:
                    out.error(exc)
        client.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(workers)]
    for t in threads:
        t.start()
    cpu0 = _self_cpu()
    start = time.perf_counter() + 0.05
    for i in range(count):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        jobs.put((requests[i % len(requests)], due))
    for _ in threads:
        jobs.put(None)
    for t in threads:
        t.join()
    out.sent = count
    out.wall_seconds = time.perf_counter() - start
    out.generator_cpu_seconds = _self_cpu() - cpu0
    return out


def closed_loop(
    host: str,
    port: int,
    requests: Sequence[bytes],
    concurrency: int,
    seconds: float,
    *,
    check: bool = True,
) -> Outcome:
    """`concurrency` clients each send the next request as soon as the last one answered."""
    out = Outcome()
    lock = threading.Lock()
    counter = itertools.count()
    stop_at = time.perf_counter() + seconds

    def worker() -> None:
        client = KeepAliveClient(host, port)
        while time.perf_counter() < stop_at:
            request = requests[next(counter) % len(requests)]
            t0 = time.perf_counter()
            try:
                status, body = client.get(request)
                with lock:
                    out.record(time.perf_counter() - t0, status, body, check)
            except (OSError, ValueError) as exc:
                with lock:
                    out.error(exc)
        client.close()

    cpu0 = _self_cpu()
    t_start = time.perf_counter()
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.wall_seconds = time.perf_counter() - t_start
    out.sent = out.ok + out.failed
    out.generator_cpu_seconds = _self_cpu() - cpu0
    return out


def each_once(
    host: str, port: int, requests: Sequence[bytes], concurrency: int, *, check: bool = True
) -> Outcome:
    """Send every request exactly once with `concurrency` clients (used to warm the pool)."""
    out = Outcome()
    lock = threading.Lock()
    todo = iter(requests)

    def worker() -> None:
        client = KeepAliveClient(host, port)
        while True:
            with lock:
                request = next(todo, None)
            if request is None:
                break
            t0 = time.perf_counter()
            try:
                status, body = client.get(request)
                with lock:
                    out.record(time.perf_counter() - t0, status, body, check)
            except (OSError, ValueError) as exc:
                with lock:
                    out.error(exc)
        client.close()

    t_start = time.perf_counter()
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.wall_seconds = time.perf_counter() - t_start
    out.sent = len(requests)
    return out
