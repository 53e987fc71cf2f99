"""Receivers isolated from each other: a hung and a trickling receiver beside a healthy one.

The router runs under gunicorn with two workers. The hung receiver accepts and never
answers; the trickling one answers one byte every 1.5 s, which a per-read timeout never
trips. Each send has a total deadline, and each receiver its own workers, so the healthy
receiver's notifications arrive promptly.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
import requests

from tests.peers.router import router
from tests.peers.util import free_port, wait_for
from tests.peers.webhook import webhook_receiver

pytestmark = pytest.mark.slow
DEADLINE = 4.0


@dataclass
class BadPeer:
    """A TCP peer that reads a request, then hangs (trickle=None) or trickles a response."""

    trickle: float | None
    port: int = field(default_factory=free_port)
    connections: list[tuple[float, float]] = field(default_factory=list)  # (opened, closed)
    stop: threading.Event = field(default_factory=threading.Event)
    accepted: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def serve(self, sock: socket.socket) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self.handle, args=(conn,), daemon=True).start()

    def handle(self, conn: socket.socket) -> None:
        opened = time.monotonic()
        try:
            conn.recv(65536)
            reply = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n" * 1000
            for byte in reply:
                if self.stop.wait(self.trickle if self.trickle is not None else 3600):
                    break
                conn.sendall(bytes([byte]))
        except OSError:
            pass
        finally:
            self.connections.append((opened, time.monotonic()))
            conn.close()


@contextmanager
def bad_peer(trickle: float | None) -> Iterator[BadPeer]:
    peer = BadPeer(trickle)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", peer.port))
    sock.listen(200)
    threading.Thread(target=peer.serve, args=(sock,), daemon=True).start()
    try:
        yield peer
    finally:
        peer.stop.set()
        sock.close()


def test_hung_and_trickling_receivers_do_not_delay_a_healthy_one(tmp_path):
    with bad_peer(None) as hung, bad_peer(1.5) as trickler, webhook_receiver() as healthy:
        hook = {"timeout": f"{DEADLINE:g}s", "send_resolved": False}
        config = {
            "route": {
                "receiver": "healthy",
                "group_by": ["..."],
                "group_wait": "0s",
                "group_interval": "10m",
                "routes": [
                    {"matchers": ['target="hung"'], "receiver": "hung"},
                    {"matchers": ['target="trickle"'], "receiver": "trickle"},
                ],
            },
            "receivers": [
                {"name": "hung", "webhook_configs": [{"url": hung.url, **hook}]},
                {"name": "trickle", "webhook_configs": [{"url": trickler.url, **hook}]},
                {"name": "healthy", "webhook_configs": [{"url": healthy.url, **hook}]},
            ],
            "delivery": {"initial_backoff": "1s", "max_backoff": "2s"},
        }
        with router(tmp_path, config, workers=2) as proc:
            bad = [
                {
                    "labels": {"alertname": "Bad", "target": target, "n": str(i)},
                    "endsAt": "2099-01-01T00:00:00Z",
                }
                for target in ("hung", "trickle")
                for i in range(40)
            ]
            assert (
                requests.post(
                    f"{proc.url}/api/v2/alerts", headers=proc.auth, json=bad, timeout=10
                ).status_code
                == 200
            )
            wait_for(
                lambda: hung.accepted and trickler.accepted,
                timeout=20,
                what="the bad receivers' sends under way",
            )
            started = time.monotonic()
            good = [
                {
                    "labels": {"alertname": "Good", "target": "healthy", "n": str(i)},
                    "endsAt": "2099-01-01T00:00:00Z",
                }
                for i in range(10)
            ]
            assert (
                requests.post(
                    f"{proc.url}/api/v2/alerts", headers=proc.auth, json=good, timeout=10
                ).status_code
                == 200
            )
            wait_for(
                lambda: len(healthy.alerts()) >= 10,
                timeout=30,
                what="10 notifications to the healthy receiver",
            )
            took = time.monotonic() - started
            assert sorted(int(a["labels"]["n"]) for a in healthy.alerts()) == list(range(10))
            # The trickling peer's connections were cut at the total deadline.
            wait_for(lambda: len(trickler.connections) >= 2, timeout=30, what="trickling sends cut")
            durations = [closed - opened for opened, closed in trickler.connections]
            assert max(durations) < DEADLINE + 2.5, durations
            assert "did not answer within 4s (total deadline)" in proc.log()
        print(
            f"healthy receiver: 10 notifications in {took:.1f}s; trickling sends cut after "
            f"{max(durations):.1f}s (deadline {DEADLINE:g}s)"
        )


@pytest.mark.parametrize("via", ["direct", "proxy"])
def test_a_trickling_peer_is_cut_at_the_total_deadline(via):
    """The notifier alone: per-read timeouts never trip on a trickle; the deadline does,
    also when the trickling peer is the HTTP proxy."""
    from alert_router.notify import NotifyError, build_notifiers, sample_notification

    with bad_peer(1.0) as trickler:
        hook: dict[str, object] = {"url": trickler.url, "timeout": "2s"}
        if via == "proxy":
            hook = {
                "url": "http://receiver.invalid/hook",
                "timeout": "2s",
                "http_config": {"proxy_url": f"http://127.0.0.1:{trickler.port}"},
            }
        [notifier] = build_notifiers(
            {"name": "w", "webhook_configs": [hook]}, path="receivers[0]", global_config={}
        )
        started = time.monotonic()
        with pytest.raises(NotifyError) as err:
            notifier.notify(sample_notification())
        took = time.monotonic() - started
    assert err.value.reason == "timeout" and "total deadline" in str(err.value)
    assert took < 4.0, took
