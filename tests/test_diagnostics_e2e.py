"""Diagnostics from a sick host to the mailbox, with real peers only.

Two hosts, each in its own network namespace, probed over SSH by the exporter process
(`python -m exporter.main`):

- web1 is a small host in trouble: its /mnt/data (a 16 MiB tmpfs) is filled by one file
  under /mnt/data/backups, and a process named `memhog` holds 200 MiB. web1 runs in
  its own mount and PID namespaces, so its `ps` sees its own processes only and its
  mounts are its own; its /proc/meminfo says 1 GiB, 90 % used (the machine's real one
  is many times larger, and a 200 MiB process would not stand out on it).
- web2 stops answering in the middle of its SSH session (its packets are dropped
  after the exporter connected), as a host stuck in I/O does.

Prometheus probes web1 through the exporter (targets from its /sd) and the rule engine
(`python -m rules.cli run`) raises DiskAlmostFull for /mnt/data, with its trace id. The
router (gunicorn, 2 workers) routes critical alerts with `diagnostics: true` to an email
receiver on a real SMTP server (aiosmtpd, STARTTLS). web2's alert is posted by hand, as
the engine's own AlertBook writes it, so that its timing starts at a known instant.

The tests check that the email names the full directory and the process, that the
engine's trace id shows every stage up to the SMTP delivery, and that web2's email
arrives within group_wait + the diagnostics timeout, marked as sent without diagnostics.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests
import yaml

from rules.alerts import AlertBook, AlertRecord
from tests.peers.netns import NetnsHost, netns_available, network
from tests.peers.prometheus import prometheus
from tests.peers.router import RouterProcess, router
from tests.peers.smtp import Delivered, SmtpServer, smtp_server
from tests.peers.sshd import SSHD, Sshd, SshdKeys, sshd, write_config
from tests.peers.stack import Process
from tests.peers.util import free_port, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.root]

HOG = "memhog"
HOG_MIB = 200
FULL_MOUNT = "/mnt/data"
FULL_DIR = "/mnt/data/backups"
GROUP_WAIT = 2.0
DIAG_TIMEOUT = 5.0
TOKEN = "e2e-exporter-token"
# The shipped DiskAlmostFull (rules/default_conditions.yml) without its 5 minutes' `for`.
DISK_CONDITION = {
    "alert": "DiskAlmostFull",
    "metric": "stacksense_filesystem_usage_ratio",
    "op": ">",
    "threshold": 0.9,
    "severity": "critical",
    "annotations": {"summary": "Filesystem {mountpoint} on {server} is {value_percent} full"},
}
# web1's /proc/meminfo: a 1 GiB host with 10 % available.
FAKE_MEMINFO = (
    "MemTotal:        1048576 kB\nMemFree:           52428 kB\n"
    "MemAvailable:     104857 kB\nSwapTotal:             0 kB\n"
    "SwapFree:              0 kB\n"
)
# Names itself (prctl PR_SET_NAME: ps's comm), touches HOG_MIB MiB, says so, then waits.
HOG_CODE = (
    "import ctypes, sys, time; ctypes.CDLL(None).prctl(15, b'" + HOG + "', 0, 0, 0); "
    f"x = bytearray({HOG_MIB} << 20); x[::4096] = b'x' * len(x[::4096]); "
    "open(sys.argv[1], 'w').write('ok'); time.sleep(3600)"
)


@contextmanager
def sick_host(workdir: Path, keys: SshdKeys, host: NetnsHost) -> Iterator[Sshd]:
    """sshd in `host`'s network namespace plus its own mount and PID namespaces, with a
    full tmpfs and the memory hog. Everything lives in those namespaces: killing the
    namespace's first process (sshd, PID 1 there) kills the hog and the sessions, and
    the last process gone takes the mounts with it; nothing is mounted on the machine."""
    workdir.mkdir(parents=True, exist_ok=True)
    cfg = write_config(workdir, keys, host.address, 22)
    meminfo = workdir / "meminfo"
    meminfo.write_text(FAKE_MEMINFO)
    ready = workdir / "hog-ready"
    script = "\n".join(
        [
            "set -e",
            "mount -t tmpfs -o size=1m tmpfs /mnt",  # this namespace's /mnt, not the machine's
            f"mkdir {FULL_MOUNT}",
            f"mount -t tmpfs -o size=16m tmpfs {FULL_MOUNT}",
            f"mkdir {FULL_DIR}",
            f"head -c 32M /dev/zero > {FULL_DIR}/db.dump 2>/dev/null || true",  # ENOSPC at 16
            f"mount --bind {meminfo} /proc/meminfo",
            f"{shlex.quote(sys.executable)} -c {shlex.quote(HOG_CODE)} {ready} &",
            f"exec {SSHD} -D -e -f {cfg}",
        ]
    )
    log = open(workdir / "sshd.log", "wb")  # noqa: SIM115 - closed below
    # --kill-child: when unshare dies, sshd (PID 1 of the new PID namespace) is killed, and
    # with it every process of that namespace.
    proc = subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            host.name,
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "--pid",
            "--fork",
            "--mount-proc",
            "--kill-child",
            "sh",
            "-c",
            script,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = Sshd(host.address, 22, workdir, keys, proc)

    def up() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"sick host exited: {server.log()[-800:]}")
        listening = host.exec("ss", "-ltnH", "sport = :22", check=False).stdout.strip()
        return bool(listening) and ready.exists()

    try:
        wait_for(up, timeout=30, what="web1's sshd and memory hog")
        yield server
    finally:
        proc.kill()
        proc.wait(10)
        log.close()
        # The PID namespace's end takes the hog with it; a leftover would be a leak.
        wait_for(
            lambda: not any(p.info["name"] == HOG for p in psutil.process_iter(["name"])),
            timeout=10,
            what=f"no {HOG} process left",
        )


@dataclass
class Pipeline:
    smtp: SmtpServer
    router: RouterProcess
    exporter_url: str
    hosts: dict[str, NetnsHost]


def rule_alert(server: str, start: float) -> list[dict[str, Any]]:
    """What the rule engine posts for a full filesystem (its AlertBook, its trace id), for
    the host it does not watch here."""
    book = AlertBook()
    book.sync(
        [
            AlertRecord(
                {
                    "alertname": "DiskAlmostFull",
                    "server": server,
                    "severity": "critical",
                    "mountpoint": FULL_MOUNT,
                },
                {"summary": f"Filesystem {FULL_MOUNT} on {server} is 100% full"},
                start,
            )
        ],
        start,
    )
    return book.payload(start, 600)


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory, ssh_keys: SshdKeys) -> Iterator[Pipeline]:
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces, mounts)")
    if not netns_available():
        pytest.skip("network namespaces are not available here")
    tmp = tmp_path_factory.mktemp("diag-e2e")
    with network(2) as net, ExitStack() as stack:
        web1, web2 = net.hosts
        servers = {
            "web1": stack.enter_context(sick_host(tmp / "web1", ssh_keys, web1)),
            "web2": stack.enter_context(
                sshd(tmp / "web2", ssh_keys, host=web2.address, port=22, netns=web2.name)
            ),
        }
        known = tmp / "known_hosts"
        known.write_text("".join(s.known_hosts_line() for s in servers.values()))
        inventory = tmp / "servers.yml"
        inventory.write_text(
            "known_hosts: " + str(known) + "\n"
            f"credentials: {{default: {{key_file: '{ssh_keys.client_key}'}}}}\n"
            "servers:\n"
            + "".join(
                f"  - {{name: {n}, host: {s.host}, port: 22, user: root, "
                "connect_timeout_seconds: 3}\n"
                for n, s in servers.items()
            )
        )
        (tmp / "exporter-token").write_text(TOKEN + "\n")
        port = free_port()
        exporter = Process(
            "exporter",
            [
                sys.executable,
                "-m",
                "exporter.main",
                f"--config.file={inventory}",
                f"--web.listen-address=127.0.0.1:{port}",
                f"--web.api-token-file={tmp / 'exporter-token'}",
            ],
            tmp / "exporter.log",
            f"http://127.0.0.1:{port}/-/ready",
        )
        exporter.start()
        stack.callback(exporter.stop)
        exporter_url = f"http://127.0.0.1:{port}"
        for name in servers:  # both connected: web2 will hang inside an open session
            resp = requests.get(f"{exporter_url}/probe", params={"target": name}, timeout=30)
            assert "stacksense_probe_success 1" in resp.text, (name, resp.text[-2000:])
        (tmp / "smtp").mkdir()
        smtp = stack.enter_context(smtp_server(tmp / "smtp", tls="starttls"))
        assert smtp.cert is not None
        config = {
            "diagnostics": {
                "exporter_url": exporter_url,
                "timeout": f"{DIAG_TIMEOUT:g}s",
                "token_file": str(tmp / "exporter-token"),
            },
            "route": {
                "receiver": "ops",
                "group_by": ["alertname", "server"],
                "group_wait": f"{GROUP_WAIT:g}s",
                "group_interval": "5m",
                "repeat_interval": "4h",
                "routes": [{"matchers": ['severity="critical"'], "diagnostics": True}],
            },
            "receivers": [
                {
                    "name": "ops",
                    "email_configs": [
                        {
                            "to": "ops@example.com",
                            "from": "stacksense@example.com",
                            "smarthost": smtp.smarthost,
                            "tls_config": {"ca_file": str(smtp.cert.cert)},
                        }
                    ],
                }
            ],
        }
        proc = stack.enter_context(router(tmp / "router", config, workers=2))
        # Prometheus probes web1 through the exporter; the rule engine raises its alert.
        exporter_address = f"127.0.0.1:{port}"
        prom = stack.enter_context(
            prometheus(
                tmp / "prometheus",
                {
                    "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                    "scrape_configs": [
                        {
                            "job_name": "stacksense-probe",
                            "metrics_path": "/probe",
                            # The exporter's /sd as `make run` uses it (it gives the
                            # `server` label); web2 is left out, its alert is posted
                            # below by hand.
                            "http_sd_configs": [
                                {"url": f"{exporter_url}/sd", "refresh_interval": "5s"}
                            ],
                            "relabel_configs": [
                                {
                                    "source_labels": ["__address__"],
                                    "regex": "web1",
                                    "action": "keep",
                                },
                                {
                                    "source_labels": ["__address__"],
                                    "target_label": "__param_target",
                                },
                                {"source_labels": ["__param_target"], "target_label": "instance"},
                                {"target_label": "__address__", "replacement": exporter_address},
                            ],
                        },
                        # The engine trusts the probes only while it sees the exporter itself up.
                        {
                            "job_name": "stacksense-exporter",
                            "static_configs": [{"targets": [exporter_address]}],
                        },
                    ],
                },
            )
        )
        (tmp / "router-token").write_text(proc.token + "\n")
        (tmp / "conditions.yml").write_text(yaml.safe_dump({"conditions": [DISK_CONDITION]}))
        rules_port = free_port()
        (tmp / "rules.yml").write_text(
            yaml.safe_dump(
                {
                    "prometheus": {"url": prom.url},
                    "interval": "1s",
                    "state_file": str(tmp / "rules-state.json"),
                    "external_url": f"http://127.0.0.1:{rules_port}",
                    "conditions": {"file": str(tmp / "conditions.yml"), "include_defaults": False},
                    "anomalies": {"enabled": False},
                    "receivers": [
                        {"url": proc.url, "bearer_token_file": str(tmp / "router-token")}
                    ],
                }
            )
        )
        engine = Process(
            "rules",
            [
                sys.executable,
                "-m",
                "rules.cli",
                "run",
                f"--config.file={tmp / 'rules.yml'}",
                f"--web.listen-address=127.0.0.1:{rules_port}",
            ],
            tmp / "rules.log",
            f"http://127.0.0.1:{rules_port}/-/healthy",
        )
        engine.start()
        stack.callback(engine.stop)
        yield Pipeline(smtp, proc, exporter_url, {"web1": web1, "web2": web2})


def mail_for(smtp: SmtpServer, server: str, timeout: float) -> tuple[Delivered, float]:
    """The first mail about `server`, and when (time.monotonic()) it was seen."""

    def found() -> Delivered | None:
        # The text part's first line names the group: "... for alertname=..., server=web1".
        return next(
            (
                m
                for m in smtp.delivered
                if text_of(m).strip().splitlines()[0].endswith(f"server={server}")
            ),
            None,
        )

    mail = wait_for(found, timeout=timeout, interval=0.1, what=f"the mail about {server}")
    return mail, time.monotonic()


def text_of(mail: Delivered) -> str:
    body = mail.message.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content())


def trace(proc: RouterProcess, trace_id: str) -> list[dict[str, Any]]:
    resp = requests.get(f"{proc.url}/api/v1/trace/{trace_id}", timeout=5)
    return [] if resp.status_code == 404 else list(resp.json()["stages"])


def test_email_names_the_full_directory_and_the_memory_hog(pipeline: Pipeline) -> None:
    # Prometheus' first sample, the engine's next cycle, then group_wait.
    mail, _ = mail_for(pipeline.smtp, "web1", timeout=60)
    text = text_of(mail)
    html = mail.message.get_body(preferencelist=("html",))
    assert html is not None and FULL_DIR in str(html.get_content())
    assert "== DIAGNOSTICS ==" in text and "sent without diagnostics" not in text, text
    diagnostics = text[text.index("== DIAGNOSTICS ==") :]
    lines = diagnostics.splitlines()
    # The disk finding names the directory that filled the mount, and says what to do.
    disk = next(i for i, line in enumerate(lines) if line.startswith(f"  - {FULL_MOUNT} is"))
    assert "100 % full" in lines[disk] and f"largest directories {FULL_DIR}" in lines[disk]
    assert lines[disk + 1].startswith(f"    -> look in {FULL_DIR} first: remove or rotate")
    # The memory finding names the process holding the memory, with its size as evidence.
    memory = next(i for i, line in enumerate(lines) if line.startswith("  - memory is"))
    assert "90 % used" in lines[memory] and f"({HOG}," in lines[memory], lines[memory]
    assert lines[memory + 1].startswith(f"    -> check whether {HOG} (pid "), lines[memory + 1]
    assert lines[memory + 2].startswith(f"       {HOG} (pid ")
    rss = re.search(r": ([\d.]+) MiB RSS", lines[memory + 2])
    assert rss and float(rss[1]) >= HOG_MIB, lines[memory + 2]

    # The rule engine's trace id, followed through the router's API to the SMTP delivery.
    [alert] = [
        a
        for a in requests.get(f"{pipeline.router.url}/api/v2/alerts", timeout=5).json()
        if a["labels"].get("server") == "web1"
    ]
    assert alert["labels"]["alertname"] == "DiskAlmostFull"
    assert alert["labels"]["mountpoint"] == FULL_MOUNT
    trace_id = alert["annotations"]["trace_id"]  # set by the engine (rules/alerts.py)
    stages = wait_for(
        lambda: (s := trace(pipeline.router, trace_id)) and s[-1]["stage"] == "delivery" and s,
        timeout=10,
        what="the delivery in the trace",
    )
    assert [(s["stage"], s["outcome"]) for s in stages] == [
        ("received", "firing"),
        ("grouped", "ok"),
        ("diagnostics", "included"),
        ("queued", "firing"),
        ("delivery", "sent"),
    ]
    assert stages[-1]["details"]["integration"] == "email"
    assert stages[-1]["details"]["receiver"] == "ops"
    assert [s["ts"] for s in stages] == sorted(s["ts"] for s in stages)
    # Kept for docs/examples/notification-with-diagnostics.txt.
    (Path(pipeline.router.workdir) / "mail-web1.txt").write_text(
        f"Subject: {str(mail.message['Subject']).strip()}\n\n{text}"
    )


def test_a_hung_host_still_gets_its_email_on_time(pipeline: Pipeline) -> None:
    # web2's packets are dropped now: the exporter's open session to it hangs.
    pipeline.hosts["web2"].drop_ssh()
    payload = rule_alert("web2", time.time())
    trace_id = payload[0]["annotations"]["trace_id"]
    posted = time.monotonic()
    resp = requests.post(
        f"{pipeline.router.url}/api/v2/alerts",
        json=payload,
        headers=pipeline.router.auth,
        timeout=10,
    )
    assert resp.status_code == 200, resp.text
    mail, seen = mail_for(pipeline.smtp, "web2", timeout=GROUP_WAIT + DIAG_TIMEOUT + 20)
    # group_wait, then at most the diagnostics timeout; the rest is the dispatcher's tick
    # and the SMTP exchange.
    print(f"web2's mail {seen - posted:.1f}s after the alert was posted")
    assert seen - posted < GROUP_WAIT + DIAG_TIMEOUT + 2.0, seen - posted
    text = text_of(mail)
    assert f"sent without diagnostics: web2: no answer within {DIAG_TIMEOUT:g}s" in text, text
    stages = wait_for(
        lambda: (s := trace(pipeline.router, trace_id)) and s[-1]["stage"] == "delivery" and s,
        timeout=10,
        what="the delivery in the trace",
    )
    [diag] = [s for s in stages if s["stage"] == "diagnostics"]
    assert diag["outcome"] == "without" and "no answer within" in diag["details"]["note"]
    assert (stages[-1]["stage"], stages[-1]["outcome"]) == ("delivery", "sent")
