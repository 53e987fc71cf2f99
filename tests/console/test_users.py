"""Password hashing and the `stacksense-router users` command against a real store file."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from alert_router.cli import main
from alert_router.console import users as users_mod
from tests.console.session import console_config

REPO = Path(__file__).resolve().parents[2]


def test_scrypt_hash_is_salted_memory_hard_and_verifies(monkeypatch):
    monkeypatch.setattr(users_mod, "SCRYPT_N", 2**15)
    a, b = users_mod.hash_password("same password"), users_mod.hash_password("same password")
    assert a != b  # per-user salt
    kind, n, r, p, _salt, _digest = a.split("$")
    assert (kind, int(n), int(r), int(p)) == ("scrypt", 2**15, 8, 1)  # 32 MiB per hash
    assert users_mod.verify_password("same password", a)
    assert not users_mod.verify_password("other password", a)
    assert not users_mod.verify_password("same password", "garbage")


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def test_users_cli_runs_as_a_process(tmp_path):
    config = tmp_path / "router.yml"
    config.write_text(yaml.safe_dump(console_config(tmp_path, "http://127.0.0.1:9")))
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "alert_router.cli",
            "-c",
            str(config),
            "users",
            "add",
            "alice",
            "--role",
            "viewer",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert out.returncode == 0 and "password (shown once):" in out.stdout, out.stderr


def test_users_cli_add_list_set_role_remove(tmp_path, monkeypatch, capsys):
    def run_cli(config: Path, *args: str, stdin: str = "") -> Result:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        code = main(["-c", str(config), "users", *args])
        out = capsys.readouterr()
        return Result(code, out.out, out.err)

    config = tmp_path / "router.yml"
    config.write_text(yaml.safe_dump(console_config(tmp_path, "http://127.0.0.1:9")))
    out = run_cli(config, "add", "alice\n", "--role", "viewer")  # a name ends at its text
    assert out.returncode != 0 and "name" in out.stderr
    out = run_cli(config, "add", "alice", "--role", "viewer")
    assert out.returncode == 0, out.stderr
    assert "password (shown once):" in out.stdout
    secret = tmp_path / "console-admin"
    out = run_cli(config, "add", "admin", "--role", "admin", "--write-password", str(secret))
    assert out.returncode == 0 and str(secret) in out.stdout
    name, password = secret.read_text().splitlines()
    assert name == "admin" and len(password) >= 16 and password not in out.stdout
    assert stat.S_IMODE(os.stat(secret).st_mode) == 0o600
    # make run calls it at every start: --if-missing keeps the first password.
    again = run_cli(
        config, "add", "admin", "--role", "admin", "--if-missing", "--write-password", str(secret)
    )
    assert again.returncode == 0 and secret.read_text().splitlines()[1] == password
    out = run_cli(
        config,
        "add",
        "bob",
        "--role",
        "operator",
        "--password-file",
        "-",
        stdin="a long enough password\n",
    )
    assert out.returncode == 0 and "a long enough" not in out.stdout
    assert run_cli(config, "add", "bob", "--role", "viewer").returncode == 2  # exists
    assert (
        run_cli(
            config, "add", "x", "--role", "viewer", "--password-file", "-", stdin="short\n"
        ).returncode
        == 2
    )
    assert run_cli(config, "set-role", "alice", "operator").returncode == 0
    listed = run_cli(config, "list").stdout.split("\n")
    assert "alice\toperator" in listed and "admin\tadmin" in listed and "bob\toperator" in listed
    assert run_cli(config, "remove", "alice").returncode == 0
    assert run_cli(config, "remove", "alice").returncode == 1
    assert "alice" not in run_cli(config, "list").stdout
