"""A minimal, strict HTTP/1.1 connection handler: request line, headers, Content-Length body.

Why not http.server.BaseHTTPRequestHandler: it parses every request's headers
with the email package and writes the status line, headers and body in
separate calls, several times the CPU of this per keep-alive request with
Prometheus' headers (and a probe's CPU budget is small). The exporter needs
far less: GET, HEAD and POST, a few headers, bodies with a Content-Length.
So this reads the request line and headers with C-level readline/partition
calls and sends each response in one write.

It stays strict rather than lenient: anything it does not understand gets a
clear status and the connection is closed (the stream cannot be trusted after
a malformed request). Malformed request or header line: 400; request line
over 64 KiB: 414; a header line over 64 KiB or more than 100 headers: 431 (the
stdlib's limits); HTTP/2+: 505; a body over `max_body`: 413; a chunked body:
501 (clients here send Content-Length). Keep-alive follows RFC 9112:
HTTP/1.1 keeps the connection unless `Connection: close`, HTTP/1.0 closes it
unless `Connection: keep-alive`. `Expect: 100-continue` is answered.
"""

from __future__ import annotations

import logging
import re
import socketserver
import time
from email.utils import formatdate
from http import HTTPStatus
from io import BufferedIOBase

from stacksense_common.http_metrics import UNMATCHED

log = logging.getLogger(__name__)

MAX_LINE = 65536
MAX_HEADERS = 100
SERVER = "stacksense-exporter"

_VERSION = re.compile(rb"HTTP/[0-9]\.[0-9]")
_PHRASES = {s.value: s.phrase for s in HTTPStatus}


class HttpError(Exception):
    """A request the server refuses; the connection is closed after the answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Request:
    """One parsed request: header names are lower-cased; the first of a repeated header wins."""

    __slots__ = ("body", "headers", "keep_alive", "method", "target", "version")

    def __init__(
        self,
        method: str,
        target: str,
        version: str,
        headers: dict[str, str],
        body: bytes,
        keep_alive: bool,
    ) -> None:
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        self.body = body
        self.keep_alive = keep_alive


def read_request(
    rfile: BufferedIOBase,
    max_body: int,
    send_continue: socketserver.BaseRequestHandler | None = None,
) -> Request | None:
    """Read one request from `rfile`; None when the client closed the connection cleanly.

    Raises HttpError for a request that must be refused. `send_continue`, when
    given, is the handler whose socket gets `100 Continue` for `Expect: 100-continue`.
    """
    line = rfile.readline(MAX_LINE + 1)
    if line in (b"\r\n", b"\n"):  # RFC 9112 2.2: ignore an empty line before the request
        line = rfile.readline(MAX_LINE + 1)
    if not line:
        return None
    if len(line) > MAX_LINE:
        raise HttpError(414, "request line too long")
    parts = line.split()
    if len(parts) != 3:
        raise HttpError(400, "malformed request line")
    method_b, target_b, version_b = parts
    if version_b not in (b"HTTP/1.1", b"HTTP/1.0"):
        if _VERSION.fullmatch(version_b):
            raise HttpError(505, f"HTTP version {version_b.decode()} is not supported")
        raise HttpError(400, "malformed request line")
    if not method_b.isalpha() or not method_b.isupper():
        raise HttpError(400, "malformed request line")
    headers = _read_headers(rfile)
    version = version_b.decode()
    connection = headers.get("connection", "").lower()
    if version == "HTTP/1.1":
        keep_alive = "close" not in connection
    else:
        keep_alive = "keep-alive" in connection
    body = _read_body(
        rfile, headers, max_body, version, send_continue if version == "HTTP/1.1" else None
    )
    return Request(
        method_b.decode(), target_b.decode("latin-1"), version, headers, body, keep_alive
    )


def _read_headers(rfile: BufferedIOBase) -> dict[str, str]:
    headers: dict[str, str] = {}
    count = 0
    while True:
        line = rfile.readline(MAX_LINE + 1)
        if line in (b"\r\n", b"\n"):
            return headers
        if not line:
            raise HttpError(400, "request ended inside the headers")
        if len(line) > MAX_LINE:
            raise HttpError(431, "header line too long")
        count += 1
        if count > MAX_HEADERS:
            raise HttpError(431, f"more than {MAX_HEADERS} headers")
        name_b, sep, value_b = line.partition(b":")
        # No whitespace in or around a field name (RFC 9112 5.1), no obsolete line folding.
        if not sep or not name_b or name_b != name_b.strip() or b" " in name_b or b"\t" in name_b:
            raise HttpError(400, "malformed header line")
        name = name_b.decode("latin-1").lower()
        value = value_b.strip().decode("latin-1")
        previous = headers.setdefault(name, value)
        if name == "content-length" and previous != value:
            raise HttpError(400, "conflicting Content-Length headers")


def _read_body(
    rfile: BufferedIOBase,
    headers: dict[str, str],
    max_body: int,
    version: str,
    handler: socketserver.BaseRequestHandler | None,
) -> bytes:
    if "transfer-encoding" in headers:
        raise HttpError(501, "Transfer-Encoding is not supported; send a Content-Length")
    raw = headers.get("content-length")
    if raw is None:
        return b""
    if not raw.isdigit() or not raw.isascii():
        raise HttpError(400, "Content-Length is not a number")
    length = int(raw)
    if length > max_body:
        raise HttpError(413, f"body larger than {max_body} bytes")
    if not length:
        return b""
    expect = headers.get("expect")
    if expect is not None:
        if expect.lower() != "100-continue":
            raise HttpError(417, "only Expect: 100-continue is supported")
        if handler is not None:
            handler.request.sendall(f"{version} 100 Continue\r\n\r\n".encode())
    body = rfile.read(length)
    if len(body) != length:
        raise HttpError(400, "request ended inside the body")
    return body


_date_cache: tuple[int, str] = (0, "")


def http_date() -> str:
    """The Date header's value, formatted once per second."""
    global _date_cache  # noqa: PLW0603 - a one-entry cache; a race only formats twice
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, formatdate(now, usegmt=True))
    return _date_cache[1]


def response_bytes(
    status: int,
    body: bytes,
    content_type: str,
    *,
    head: bool = False,
    close: bool = False,
    extra: str = "",
) -> bytes:
    """Status line, headers and (unless `head`) body, ready for one sendall.

    `extra` is more header lines, each ending in CRLF.
    """
    headers = (
        f"HTTP/1.1 {status} {_PHRASES.get(status, '')}\r\n"
        f"Server: {SERVER}\r\nDate: {http_date()}\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
        f"{extra}{'Connection: close' + chr(13) + chr(10) if close else ''}\r\n"
    )
    return headers.encode("latin-1") if head else headers.encode("latin-1") + body


class HttpHandler(socketserver.StreamRequestHandler):
    """One keep-alive connection: read a request, `dispatch` it, until either side closes.

    Subclasses implement `dispatch(request)` and answer through `send`; `dispatch` names
    the route it took in `handler_label`, and `finished` (a no-op here) hears of every
    answered request: that label (or "unmatched"), the status and the time it took.
    """

    # One write per response already; NODELAY so that it leaves at once.
    disable_nagle_algorithm = True
    max_body = 64 * 1024
    # Socket timeout (StreamRequestHandler.setup applies it): a client that goes silent,
    # mid-request or between keep-alive requests, gives its thread back after this long
    # instead of holding it for ever. Longer than any scrape interval in use, so
    # Prometheus' kept connections stay open; the probe itself is not a socket wait.
    timeout = 300.0

    req: Request
    handler_label: str
    _close: bool
    _status: int

    def handle(self) -> None:
        while True:
            self.waiting(True)
            try:
                req = read_request(self.rfile, self.max_body, self)
            except HttpError as exc:
                self.waiting(False)
                started = time.perf_counter()
                log.debug("%s: refused request: %s", self.client_address[0], exc.message)
                self._write(
                    response_bytes(
                        exc.status,
                        f"{exc.message}\n".encode(),
                        "text/plain; charset=utf-8",
                        close=True,
                    )
                )
                self.finished(UNMATCHED, exc.status, time.perf_counter() - started)
                return
            except (OSError, UnicodeDecodeError):
                return  # reset, timed out or not ASCII where it must be: nothing to answer
            self.waiting(False)
            if req is None:
                return
            self.req = req
            self._close = not req.keep_alive
            self.handler_label = UNMATCHED
            self._status = 0
            started = time.perf_counter()
            try:
                self.dispatch(req)
            except OSError:
                self._finish(started)
                return
            except Exception:  # noqa: BLE001 - one bad request must not kill the server
                log.exception("%s %s failed", req.method, req.target)
                self._write(response_bytes(500, b"internal error\n", "text/plain", close=True))
                self._status = 500
                self._finish(started)
                return
            self._finish(started)
            if self._close:
                return

    def dispatch(self, req: Request) -> None:  # pragma: no cover - subclasses define it
        raise NotImplementedError

    def waiting(self, idle: bool) -> None:
        """Called with True before reading a request (the connection is idle, or the
        request still arriving) and False once one is read (subclasses track it)."""

    def finished(self, handler: str, status: int, seconds: float) -> None:
        """Called once per answered request (subclasses count it)."""

    def _finish(self, started: float) -> None:
        if self._status:  # nothing was answered when the client went away first
            self.finished(self.handler_label, self._status, time.perf_counter() - started)

    def send(
        self, status: int, body: bytes | str, content_type: str = "text/plain", extra: str = ""
    ) -> None:
        """Answer the current request in one write (no body for HEAD)."""
        data = body.encode() if isinstance(body, str) else body
        self._status = status
        log.debug('%s "%s %s" %d', self.client_address[0], self.req.method, self.req.target, status)
        self._write(
            response_bytes(
                status,
                data,
                content_type,
                head=self.req.method == "HEAD",
                close=self._close,
                extra=extra,
            )
        )

    def _write(self, data: bytes) -> None:
        try:
            self.request.sendall(data)
        except OSError:
            self._close = True
