"""The one recording HTTP peer: a loopback server that keeps every POST and answers from a script.

Every HTTP service the code under test posts to (Alertmanager's API, webhooks, Slack,
PagerDuty, a notification sink) is played by `HttpReceiver`. What differs per service is a
validator (what the real service would reject, see tests/peers/slack.py, pagerduty.py and
webhook.py) and the answers; the recording, scripting, error injection and restart on the
same port are here once. tests/peers/alert_receiver.py and tests/peers/webhook.py keep their
older names as thin views over it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from requests.structures import CaseInsensitiveDict


@dataclass(frozen=True)
class Reply:
    """One scripted answer."""

    status: int = 200
    body: str = "ok"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering (to provoke client timeouts)


@dataclass
class Received:
    """One request as the receiver saw it, and what it answered."""

    path: str
    headers: Mapping[str, str]  # case-insensitive, as HTTP header names are
    body: bytes
    problems: list[str]
    status: int = 0  # the status it was answered with
    at: float = 0.0  # time.monotonic() on arrival

    def json(self) -> Any:
        return json.loads(self.body)


# (path, headers, body) -> what the real service would reject; [] when it accepts it
Validator = Callable[[str, Mapping[str, str], bytes], list[str]]


def plain_invalid(problems: list[str]) -> Reply:
    return Reply(400, "; ".join(problems))


class HttpReceiver:
    """A loopback HTTP server recording POSTs and answering from a script (then the default).

    `path` None accepts any path (and `url` is then the bare origin); otherwise other paths
    get 404. Use as a context manager; `stop()` then `start()` plays a receiver that is down
    for a while, on the same port.
    """

    def __init__(
        self,
        *,
        path: str | None = None,
        port: int = 0,
        validator: Validator | None = None,
        success: Reply = Reply(200, ""),
        invalid: Callable[[list[str]], Reply] = plain_invalid,
    ) -> None:
        self.path = path
        self.validator = validator
        self.success = success
        self.invalid = invalid
        self.script: list[Reply] = []
        self._records: list[Received] = []
        # reentrant: the compatibility views read the records while a caller holds it
        self.lock = threading.RLock()
        self.server: ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None
        self._bind(port)
        assert self.server is not None
        self.port: int = self.server.server_address[1]
        self.url: str = f"http://127.0.0.1:{self.port}{path or ''}"

    @property
    def status(self) -> int:
        """The status a healthy answer has; set it to play a failing service."""
        return self.success.status

    @status.setter
    def status(self, value: int) -> None:
        self.success = Reply(value, self.success.body, self.success.headers)

    def reply_with(self, *replies: Reply) -> None:
        """Answer the next requests with `replies`, in order, then with `success`."""
        with self.lock:
            self.script = list(replies)

    def requests(self) -> list[Received]:
        with self.lock:
            return list(self._records)

    def clear(self) -> None:
        with self.lock:
            self._records.clear()
            self.script.clear()

    def start(self) -> None:
        if self.server is None:
            self._bind(self.port)
        assert self.server is not None
        # a short poll interval keeps shutdown (and so test teardown) quick
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def stop(self) -> None:
        """Stop listening: clients then see connection refused."""
        if self.server is not None:
            if self.thread is not None:
                self.server.shutdown()
                self.thread.join(timeout=5)
                self.thread = None
            self.server.server_close()
            self.server = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _bind(self, port: int) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", port), self._handler_class())
        self.server.daemon_threads = True

    def _answer(self, path: str, headers: Mapping[str, str], body: bytes) -> Reply:
        at = time.monotonic()
        wrong_path = self.path is not None and path != self.path
        problems = [f"unknown path {path}"] if wrong_path else []
        if not problems and self.validator is not None:
            problems = self.validator(path, headers, body)
        with self.lock:
            scripted = self.script.pop(0) if self.script else None
            if wrong_path:
                reply = Reply(404, "no_service")
            elif scripted is not None:
                reply = scripted
            else:
                reply = self.invalid(problems) if problems else self.success
            self._records.append(Received(path, headers, body, problems, reply.status, at))
        return reply

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's hook name
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                headers = CaseInsensitiveDict(dict(self.headers.items()))
                reply = receiver._answer(self.path, headers, body)
                if reply.delay:
                    time.sleep(reply.delay)
                data = reply.body.encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "text/plain; charset=utf-8")
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        return Handler
