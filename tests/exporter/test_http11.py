"""The exporter's minimal HTTP/1.1 layer: keep-alive, bodies, a clear refusal of anything odd."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import ThreadingHTTPServer

import pytest

from exporter.http11 import MAX_HEADERS, HttpHandler, Request


class Echo(HttpHandler):
    """Answers every request with what it parsed, as JSON; /fixed a fixed text; /boom raises."""

    max_body = 1000

    def dispatch(self, req: Request) -> None:
        if req.target == "/boom":
            raise RuntimeError("boom")
        if req.target == "/fixed":
            self.send(200, "fixed body\n")
            return
        self.send(
            200,
            json.dumps(
                {
                    "method": req.method,
                    "target": req.target,
                    "headers": req.headers,
                    "body": req.body.decode(),
                }
            ),
            "application/json",
        )


@pytest.fixture
def connect() -> Iterator[Callable[[], Conn]]:
    """Opens client connections to a running Echo server; closes them all afterwards."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    server.daemon_threads = True
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    )
    thread.start()
    opened: list[Conn] = []

    def new() -> Conn:
        opened.append(Conn(server.server_address[:2]))  # type: ignore[arg-type]
        return opened[-1]

    try:
        yield new
    finally:
        for conn in opened:
            conn.sock.close()
        server.shutdown()
        server.server_close()


class Conn:
    """A raw client socket that reads responses one at a time (Content-Length framed)."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.sock = socket.create_connection(address, timeout=10)
        self.buf = b""

    def send(self, data: bytes) -> Conn:
        self.sock.sendall(data)
        return self

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        self.buf += data
        return bool(data)

    def response(self, head: bool = False) -> tuple[int, dict[str, str], bytes]:
        while b"\r\n\r\n" not in self.buf:
            assert self._fill(), f"connection closed before a response: {self.buf!r}"
        top, _, self.buf = self.buf.partition(b"\r\n\r\n")
        status_line, *lines = top.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in lines)}
        length = 0 if head else int(headers["content-length"])
        while len(self.buf) < length:
            assert self._fill(), "connection closed inside a body"
        body, self.buf = self.buf[:length], self.buf[length:]
        return int(status_line.split()[1]), headers, body

    def closed(self) -> bool:
        """Whether the server closed the connection (nothing more to read)."""
        return not self.buf and not self._fill()


def test_keep_alive_serves_pipelined_requests_on_one_connection(
    connect: Callable[[], Conn],
) -> None:
    conn = connect().send(
        b"GET /a?x=1 HTTP/1.1\r\nHost: h\r\nX-Prometheus-Scrape-Timeout-"
        b"Seconds: 9.5\r\n\r\nPOST /b HTTP/1.1\r\nContent-Length: 5\r\n\r\n"
        b"helloGET /c HTTP/1.1\r\n\r\n"
    )
    first, second, third = (conn.response() for _ in range(3))
    assert first[0] == 200 and json.loads(first[2])["target"] == "/a?x=1"
    assert json.loads(first[2])["headers"]["x-prometheus-scrape-timeout-seconds"] == "9.5"
    assert json.loads(second[2])["body"] == "hello"
    assert json.loads(third[2])["target"] == "/c"
    assert "connection" not in third[1]
    conn.send(b"GET /d HTTP/1.1\r\n\r\n")
    assert conn.response()[0] == 200


@pytest.mark.parametrize(
    ("request_head", "keeps"),
    [
        (b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", False),
        (b"GET / HTTP/1.0\r\n\r\n", False),
        (b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", True),
    ],
)
def test_connection_header_decides_keep_alive(
    connect: Callable[[], Conn], request_head: bytes, keeps: bool
) -> None:
    conn = connect().send(request_head)
    status, headers, _ = conn.response()
    assert status == 200
    assert (headers.get("connection") == "close") is not keeps
    if keeps:
        assert conn.send(b"GET / HTTP/1.1\r\n\r\n").response()[0] == 200
    else:
        assert conn.closed()


def test_head_gets_the_length_but_no_body(connect: Callable[[], Conn]) -> None:
    conn = connect()
    assert conn.send(b"GET /fixed HTTP/1.1\r\n\r\n").response()[2] == b"fixed body\n"
    status, headers, _ = conn.send(b"HEAD /fixed HTTP/1.1\r\n\r\n").response(head=True)
    assert status == 200 and headers["content-length"] == "11"
    conn.send(b"GET /y HTTP/1.1\r\n\r\n")  # the next response follows at once: no body sent
    assert json.loads(conn.response()[2])["target"] == "/y"


def test_expect_100_continue_is_answered_before_the_body(connect: Callable[[], Conn]) -> None:
    conn = connect().send(b"POST /p HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
    while b"\r\n\r\n" not in conn.buf:
        assert conn._fill()  # noqa: SLF001
    assert conn.buf.startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
    conn.buf = conn.buf[len(b"HTTP/1.1 100 Continue\r\n\r\n") :]
    conn.send(b"abc")
    assert json.loads(conn.response()[2])["body"] == "abc"


@pytest.mark.parametrize(
    ("request_head", "status", "says"),
    [
        (b"GET /\r\n\r\n", 400, "malformed request line"),
        (b"GET / HTTP/1.1 extra\r\n\r\n", 400, "malformed request line"),
        (b"get / HTTP/1.1\r\n\r\n", 400, "malformed request line"),
        (b"GET / SPDY/3\r\n\r\n", 400, "malformed request line"),
        (b"GET / HTTP/2.0\r\n\r\n", 505, "HTTP/2.0 is not supported"),
        (b"GET / HTTP/1.1\r\nno colon here\r\n\r\n", 400, "malformed header line"),
        (b"GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400, "malformed header line"),
        (b"GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n", 400, "malformed header line"),
        (b"GET / HTTP/1.1\r\n" + b"A: b\r\n" * (MAX_HEADERS + 1) + b"\r\n", 431, "more than 100"),
        (b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n", 414, "request line too long"),
        (b"GET / HTTP/1.1\r\nA: " + b"b" * 70000 + b"\r\n\r\n", 431, "header line too long"),
        (b"POST / HTTP/1.1\r\nContent-Length: 1001\r\n\r\n", 413, "larger than 1000 bytes"),
        (b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400, "Content-Length is not a number"),
        (
            b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
            400,
            "conflicting Content-Length",
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            501,
            "send a Content-Length",
        ),
        (b"POST / HTTP/1.1\r\nContent-Length: 1\r\nExpect: magic\r\n\r\nx", 417, "100-continue"),
    ],
)
def test_malformed_requests_get_a_clear_status_and_the_connection_closes(
    connect: Callable[[], Conn], request_head: bytes, status: int, says: str
) -> None:
    conn = connect().send(request_head)
    got, headers, body = conn.response()
    assert (got, headers["connection"]) == (status, "close")
    assert says in body.decode()
    assert conn.closed()


def test_a_failing_handler_answers_500_and_the_server_goes_on(connect: Callable[[], Conn]) -> None:
    conn = connect().send(b"GET /boom HTTP/1.1\r\n\r\n")
    status, headers, body = conn.response()
    assert (status, headers["connection"], body) == (500, "close", b"internal error\n")
    assert connect().send(b"GET / HTTP/1.1\r\n\r\n").response()[0] == 200


def test_client_closing_mid_request_is_not_answered(connect: Callable[[], Conn]) -> None:
    conn = connect().send(b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc")
    conn.sock.shutdown(socket.SHUT_WR)
    status, _, body = conn.response()
    assert status == 400 and b"ended inside the body" in body


def test_a_silent_client_is_dropped_after_the_timeout(
    connect: Callable[[], Conn], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert HttpHandler.timeout is not None and HttpHandler.timeout >= 60  # > scrape intervals
    monkeypatch.setattr(Echo, "timeout", 0.3)
    idle = connect()  # says nothing at all
    partial = connect().send(b"GET / HTTP/1.1\r\nHost: h\r\n")  # stops inside the headers
    kept = connect().send(b"GET / HTTP/1.1\r\n\r\n")
    assert kept.response()[0] == 200
    for conn in (idle, partial, kept):  # each recv blocks until the server closes (10 s cap)
        assert conn.closed()
