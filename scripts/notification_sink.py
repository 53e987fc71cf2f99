"""A local notification sink for `make run`: webhook notifications appended as JSON lines.

`make run` points the router's default receiver here, so a new user sees the first
notification (in `.run/notifications.jsonl`) without configuring SMTP or Slack. Each
line is one webhook body as the router sent it (Alertmanager's webhook format), with
the time it arrived.

Usage: notification_sink.py --listen 127.0.0.1:9819 --out .run/notifications.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

MAX_BODY_BYTES = 4 * 1024 * 1024  # the router's notifications are far smaller


def make_handler(out: Path, lock: threading.Lock) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            length = int(self.headers.get("Content-Length") or 0)
            if length <= 0 or length > MAX_BODY_BYTES:
                self._answer(413 if length > MAX_BODY_BYTES else 400, "bad body length\n")
                return
            raw = self.rfile.read(length)
            try:
                body = json.loads(raw)
            except ValueError:
                self._answer(400, "body is not JSON\n")
                return
            line = json.dumps(
                {
                    "received_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                    "path": self.path,
                    "body": body,
                }
            )
            with lock, out.open("a", encoding="utf-8") as f:
                f.write(line + "\n")
            self._answer(200, "ok\n")

        def do_GET(self) -> None:  # noqa: N802
            if self.path in ("/-/healthy", "/-/ready"):
                self._answer(200, "ok\n")
            else:
                self._answer(404, "POST notifications here\n")

        def _answer(self, code: int, text: str) -> None:
            data = text.encode()
            self.send_response(code)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass  # one line per notification is already in the output file

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default="127.0.0.1:9819")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    try:
        server = ThreadingHTTPServer((host, int(port)), make_handler(args.out, threading.Lock()))
    except OSError as exc:
        print(
            f"notification sink: cannot listen on {args.listen}: {exc.strerror or exc}",
            file=sys.stderr,
        )
        return 1
    server.daemon_threads = True
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
