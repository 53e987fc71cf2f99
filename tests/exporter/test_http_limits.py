"""Client connections: a cap with a clear 503 past it, a deep listen backlog, and an
accept loop that pauses instead of spinning when the process is out of descriptors."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from exporter.server import ExporterHTTPServer
from tests.exporter.harness import running_exporter
from tests.peers.util import free_port, stop, wait_for


def idle_client(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10)


@contextmanager
def four_connections_held(
    idle_grace: float,
) -> Iterator[tuple[str, int, ExporterHTTPServer, list[socket.socket]]]:
    """An exporter of this host capped at 4 connections, and 4 raw clients holding them."""
    options = {"max_connections": 4, "idle_grace": idle_grace}
    with running_exporter(None, local_name="self", server_options=options) as exp:
        port = int(exp.url.rsplit(":", 1)[1])
        server = exp.server
        assert server is not None
        held = [idle_client(port) for _ in range(4)]
        try:
            wait_for(lambda: server.active_connections() == 4, what="4 connections held")
            yield exp.url, port, server, held
        finally:
            for sock in held:
                sock.close()


def test_connections_past_the_cap_get_503_then_close() -> None:
    # A long grace: the held connections count as busy for this test.
    with four_connections_held(idle_grace=600.0) as (url, port, server, held):
        resp = requests.get(f"{url}/-/healthy", timeout=10)
        assert resp.status_code == 503
        assert resp.text == "too many connections (limit 4); retry later\n"
        assert resp.headers["Connection"] == "close"
        # A raw client that sends nothing yet gets the same answer and EOF.
        with idle_client(port) as extra:
            data = b""
            while chunk := extra.recv(4096):
                data += chunk
        assert data.startswith(b"HTTP/1.1 503 ")
        held.pop().close()
        wait_for(lambda: server.active_connections() == 3, what="a slot freed")
        assert requests.get(f"{url}/-/healthy", timeout=10).status_code == 200


def test_idle_connections_at_the_cap_make_room_for_a_scrape() -> None:
    with four_connections_held(idle_grace=0.3) as (_url, port, _server, held):
        # Three connections that never send a request, one that sends half of one.
        held[3].sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        scrapers: list[http.client.HTTPConnection] = []
        try:
            time.sleep(0.5)
            # Each new keep-alive client takes the place of the longest-waiting connection
            # and stays open itself (it is then the newest to wait).
            for _ in range(4):
                scraper = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                scrapers.append(scraper)
                scraper.request("GET", "/-/healthy")
                resp = scraper.getresponse()
                resp.read()
                assert resp.status == 200
            for sock in held:
                sock.settimeout(5)
                assert sock.recv(1) == b""  # closed by the exporter
            scrapers[0].request("GET", "/metrics")
            text = scrapers[0].getresponse().read().decode()
            assert "stacksense_exporter_http_idle_connections_closed_total 4.0" in text
        finally:
            for scraper in scrapers:
                scraper.close()


def test_listen_backlog_absorbs_bursts() -> None:
    with running_exporter(None, local_name="self") as exp:
        port = exp.url.rsplit(":", 1)[1]
        out = subprocess.run(
            ["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, check=True
        ).stdout.split()
    # For a listening socket ss shows the backlog as Send-Q (the kernel caps it at somaxconn).
    somaxconn = int(Path("/proc/sys/net/core/somaxconn").read_text())
    assert int(out[2]) == min(1024, somaxconn), out


# Runs the exporter with a small open-file limit, then takes every descriptor left
# once it listens (as pooled SSH connections or leaked files would), and gives them
# back on SIGUSR1.
HOG = """
import os, resource, signal, socket, sys, threading, time
resource.setrlimit(resource.RLIMIT_NOFILE, (128, 128))
port = int(sys.argv[1])
hog = []
def take():
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    time.sleep(0.5)
    while True:
        try:
            hog.append(os.open("/dev/null", os.O_RDONLY))
        except OSError:
            break
    print("HOGGED", len(hog), flush=True)
def release(*_):
    for fd in hog:
        os.close(fd)
    hog.clear()
    print("RELEASED", flush=True)
signal.signal(signal.SIGUSR1, release)
threading.Thread(target=take, daemon=True).start()
from exporter.main import main
sys.exit(main([f"--web.listen-address=127.0.0.1:{port}", "--local-name=self"]))
"""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_out_of_descriptors_pauses_the_accept_loop(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "exporter.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", HOG, str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=Path(__file__).parents[2],
        )
    clients: list[socket.socket] = []
    try:
        wait_for(lambda: "HOGGED" in log.read_text(), timeout=30, what="descriptors taken")
        # Connections the kernel completes but the exporter cannot accept.
        for _ in range(5):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            sock.sendall(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n")
            clients.append(sock)
        time.sleep(0.5)
        before = cpu_seconds(proc.pid)
        time.sleep(3.0)
        used = cpu_seconds(proc.pid) - before
        print(f"exporter CPU while out of descriptors: {used:.2f}s in 3s")
        assert used < 0.5, f"accept loop used {used:.2f}s of CPU in 3s"
        proc.send_signal(signal.SIGUSR1)
        # Descriptors back: the waiting clients are served.
        clients[0].settimeout(15)
        assert clients[0].recv(4096).startswith(b"HTTP/1.1 200 ")
        assert requests.get(f"http://127.0.0.1:{port}/-/healthy", timeout=15).ok
    finally:
        for sock in clients:
            sock.close()
        stop(proc)
    text = log.read_text()
    assert text.count("cannot accept connections") == 1, text
    assert "Traceback" not in text, text


def soft_nofile(pid: int) -> int:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return int(line.split()[3])
    raise AssertionError("no open-files line")


LIMITED = """
import resource, sys
resource.setrlimit(resource.RLIMIT_NOFILE, (int(sys.argv[2]), int(sys.argv[3])))
from exporter.main import main
sys.exit(main([f"--web.listen-address=127.0.0.1:{sys.argv[1]}", "--local-name=self"]))
"""


def start_limited(
    tmp_path: Path, soft: int, hard: int
) -> tuple[subprocess.Popen[bytes], int, Path]:
    port = free_port()
    log = tmp_path / f"exporter-{soft}-{hard}.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", LIMITED, str(port), str(soft), str(hard)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=Path(__file__).parents[2],
        )
    wait_for(
        lambda: requests.get(f"http://127.0.0.1:{port}/-/ready", timeout=1).ok,
        timeout=30,
        what="exporter ready",
    )
    return proc, port, log


def test_the_open_file_limit_is_raised_at_start(tmp_path: Path) -> None:
    proc, _, log = start_limited(tmp_path, 256, 4096)
    try:
        assert soft_nofile(proc.pid) == 4096
    finally:
        stop(proc)
    assert "lowered" not in log.read_text()


def test_the_cap_fits_under_a_low_hard_limit(tmp_path: Path) -> None:
    proc, port, log = start_limited(tmp_path, 128, 128)
    held: list[socket.socket] = []
    try:
        text = log.read_text()
        assert "--web.max-connections 256 lowered to 63: the open-file limit is 128" in text
        held = [idle_client(port) for _ in range(70)]
        # The 64th and later are refused with a 503, never left waiting for a descriptor.
        resp = requests.get(f"http://127.0.0.1:{port}/-/healthy", timeout=10)
        assert resp.status_code == 503 and "limit 63" in resp.text
    finally:
        for sock in held:
            sock.close()
        stop(proc)
