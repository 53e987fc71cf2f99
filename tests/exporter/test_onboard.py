"""Onboarding against a real sshd with password auth: key deployment, host keys, inventory.

The sshd here reads the user's real `~/.ssh/authorized_keys` (StrictModes on, so the
modes onboarding sets are checked by OpenSSH itself). The user is created for this
module with its home in a fresh directory, so nothing else shares its authorized_keys.
"""

from __future__ import annotations

import logging
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paramiko
import pytest
import yaml

from exporter import stacksense_cli
from exporter.config import load_inventory
from exporter.onboarding.keys import KeyProblem, generate_ed25519, validate_public_line
from exporter.onboarding.onboard import DEPLOY_COMMAND, OnboardError, OnboardRequest, onboard
from stacksense_common.secret import Secret
from tests.peers.sshd import PASSWORD, SSHD, Sshd, SshdKeys
from tests.peers.util import free_port, port_open, stop, wait_for

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="password auth needs a real user (root)")


@pytest.fixture(scope="module")
def user() -> Iterator[pwd.struct_passwd]:
    """A throwaway user with a password and a home of its own (nothing else uses it)."""
    name = f"ss-onb-{uuid.uuid4().hex[:8]}"
    home = Path(tempfile.mkdtemp(prefix="stacksense-onboard-home-"))
    subprocess.run(["useradd", "-M", "-d", str(home), "-s", "/bin/sh", name], check=True)
    try:
        subprocess.run(["chpasswd"], input=f"{name}:{PASSWORD}\n".encode(), check=True)
        entry = pwd.getpwnam(name)
        os.chown(home, entry.pw_uid, entry.pw_gid)
        home.chmod(0o755)
        yield entry
    finally:
        # -f: sshd's session processes may linger (as zombies where PID 1 does not reap).
        subprocess.run(["userdel", "-f", name], check=False, capture_output=True)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def target(tmp_path: Path, ssh_keys: SshdKeys, user: pwd.struct_passwd) -> Iterator[Sshd]:
    """A fresh sshd reading ~/.ssh/authorized_keys; the user's ~/.ssh starts empty."""
    shutil.rmtree(Path(user.pw_dir) / ".ssh", ignore_errors=True)
    workdir = tmp_path / "sshd"
    workdir.mkdir()
    port = free_port()
    cfg = workdir / "sshd_config"
    cfg.write_text(
        "\n".join(
            [
                f"Port {port}",
                "ListenAddress 127.0.0.1",
                f"HostKey {ssh_keys.host_key}",
                f"PidFile {workdir}/sshd.pid",
                "AuthorizedKeysFile .ssh/authorized_keys",
                "UsePAM no",
                "StrictModes yes",
                "PasswordAuthentication yes",
                "KbdInteractiveAuthentication no",
                "PubkeyAuthentication yes",
                f"AllowUsers {user.pw_name}",
                "LogLevel ERROR",
            ]
        )
        + "\n"
    )
    os.makedirs("/run/sshd", exist_ok=True)
    log = open(workdir / "sshd.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [SSHD, "-D", "-e", "-f", str(cfg)], stdout=log, stderr=subprocess.STDOUT
    )
    try:
        wait_for(
            lambda: proc.poll() is None and port_open("127.0.0.1", port),
            timeout=10,
            what="onboarding sshd",
        )
        yield Sshd("127.0.0.1", port, workdir, ssh_keys, proc)
    finally:
        stop(proc)
        log.close()


def authorized_keys(user: pwd.struct_passwd) -> Path:
    return Path(user.pw_dir) / ".ssh" / "authorized_keys"


def cli(tmp_path: Path, target: Sshd, user: pwd.struct_passwd, *extra: str) -> list[str]:
    return [
        "onboard",
        "web1",
        "--host",
        target.host,
        "--port",
        str(target.port),
        "--user",
        user.pw_name,
        "--password-env",
        "SS_ONBOARD_PW",
        "--inventory",
        str(tmp_path / "servers.yml"),
        "--known-hosts",
        str(tmp_path / "known_hosts"),
        *extra,
    ]


@pytest.fixture(autouse=True)
def password_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SS_ONBOARD_PW", PASSWORD)


def test_onboard_deploys_key_pins_host_and_writes_a_loadable_inventory(
    tmp_path: Path,
    target: Sshd,
    user: pwd.struct_passwd,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    assert (
        stacksense_cli.main(
            cli(tmp_path, target, user, "--trust-on-first-use", "--label", "env=prod")
        )
        == 0
    )
    out, err = capsys.readouterr()
    assert "web1" in out and "deployed" in out and "newly generated" in out

    key_file = tmp_path / "keys" / "stacksense_ed25519"
    assert key_file.stat().st_mode & 0o777 == 0o600
    key = paramiko.Ed25519Key.from_private_key_file(str(key_file))
    lines = authorized_keys(user).read_text().splitlines()
    assert [line.split()[:2] for line in lines] == [[key.get_name(), key.get_base64()]]
    ssh_dir = authorized_keys(user).parent
    assert ssh_dir.stat().st_mode & 0o777 == 0o700
    assert authorized_keys(user).stat().st_mode & 0o777 == 0o600
    assert ssh_dir.stat().st_uid == user.pw_uid

    # The pinned host key is the server's real one, under OpenSSH's [host]:port name.
    pinned = (tmp_path / "known_hosts").read_text().split()
    assert pinned == [f"[127.0.0.1]:{target.port}", *target.keys.host_public_key().split()[:2]]

    # The lead's loader accepts the written inventory, and the entry says how to log in.
    inventory = load_inventory(tmp_path / "servers.yml")
    server = inventory.servers["web1"]
    assert (server.host, server.port, server.user) == ("127.0.0.1", target.port, user.pw_name)
    assert dict(server.labels) == {"env": "prod"}
    assert inventory.credentials[server.credentials].key_file == key_file
    assert inventory.known_hosts == tmp_path / "known_hosts"

    # The deployed key really logs in (OpenSSH with StrictModes accepted our modes).
    client = paramiko.SSHClient()
    client.load_host_keys(str(tmp_path / "known_hosts"))
    client.connect(
        "127.0.0.1",
        target.port,
        username=user.pw_name,
        pkey=key,
        look_for_keys=False,
        allow_agent=False,
        timeout=10,
    )
    client.close()
    everything = out + err + caplog.text
    assert PASSWORD not in everything


def test_onboarded_server_is_probed_by_the_real_exporter(
    tmp_path: Path, target: Sshd, user: pwd.struct_passwd
) -> None:
    from tests.exporter.harness import running_exporter

    assert stacksense_cli.main(cli(tmp_path, target, user, "--trust-on-first-use")) == 0
    with running_exporter(tmp_path / "servers.yml") as exporter:
        values = exporter.probe_samples("web1")
    assert values["stacksense_probe_success"] == 1
    assert values['stacksense_probe_failure{reason="host_key"}'] == 0


def test_running_twice_adds_the_key_once_and_keeps_other_keys(
    tmp_path: Path, target: Sshd, user: pwd.struct_passwd
) -> None:
    ssh_dir = authorized_keys(user).parent
    ssh_dir.mkdir(mode=0o700)
    other = Path(str(target.keys.client_key) + ".pub").read_text().strip()
    authorized_keys(user).write_text(other)  # no trailing newline: must not be glued to ours
    authorized_keys(user).chmod(0o600)
    shutil.chown(ssh_dir, user.pw_name)
    shutil.chown(authorized_keys(user), user.pw_name)
    request = OnboardRequest(
        name="web1",
        host=target.host,
        port=target.port,
        user=user.pw_name,
        password=Secret(PASSWORD),
        inventory=tmp_path / "servers.yml",
        known_hosts=tmp_path / "known_hosts",
        trust_on_first_use=True,
    )
    first = onboard(request)
    second = onboard(request)
    assert (first.key_added, first.key_generated) == (True, True)
    assert (second.key_added, second.key_generated) == (False, False)
    lines = authorized_keys(user).read_text().splitlines()
    assert lines[0] == other and len(lines) == 2
    assert len((tmp_path / "known_hosts").read_text().splitlines()) == 1
    servers = yaml.safe_load((tmp_path / "servers.yml").read_text())["servers"]
    assert [s["name"] for s in servers] == ["web1"]


def test_unknown_host_key_is_refused_without_trust_on_first_use(
    tmp_path: Path, target: Sshd, user: pwd.struct_passwd, capsys: pytest.CaptureFixture[str]
) -> None:
    assert stacksense_cli.main(cli(tmp_path, target, user)) == 1
    err = capsys.readouterr().err
    assert "is not in" in err and "--trust-on-first-use" in err
    assert not authorized_keys(user).exists()
    assert not (tmp_path / "servers.yml").exists()
    assert not (tmp_path / "known_hosts").exists()


def test_changed_host_key_is_refused_even_with_trust_on_first_use(
    tmp_path: Path, target: Sshd, user: pwd.struct_passwd, capsys: pytest.CaptureFixture[str]
) -> None:
    # Pin some other ed25519 key for this host:port, as if the host had been replaced.
    other = Path(str(target.keys.client_key) + ".pub").read_text().split()[:2]
    (tmp_path / "known_hosts").write_text(f"[127.0.0.1]:{target.port} {' '.join(other)}\n")
    assert stacksense_cli.main(cli(tmp_path, target, user, "--trust-on-first-use")) == 1
    err = capsys.readouterr().err
    assert "CHANGED" in err
    assert not authorized_keys(user).exists()
    assert len((tmp_path / "known_hosts").read_text().splitlines()) == 1


def test_wrong_password_is_a_clear_error_that_never_shows_the_password(
    tmp_path: Path,
    target: Sshd,
    user: pwd.struct_passwd,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wrong = "Wr0ng-but-s3cret!"
    monkeypatch.setenv("SS_ONBOARD_PW", wrong)
    caplog.set_level(logging.DEBUG)
    assert stacksense_cli.main(cli(tmp_path, target, user, "--trust-on-first-use")) == 1
    out, err = capsys.readouterr()
    assert f"password login as {user.pw_name}@127.0.0.1:{target.port} was rejected" in err
    for text in (out, err, caplog.text):
        assert wrong not in text and PASSWORD not in text
    assert not (tmp_path / "servers.yml").exists()


def test_existing_inventory_keeps_its_comments_and_servers(
    tmp_path: Path, target: Sshd, user: pwd.struct_passwd
) -> None:
    inventory = tmp_path / "servers.yml"
    inventory.write_text(
        "# fleet inventory -- keep this comment\n"
        f"known_hosts: {tmp_path / 'known_hosts'}\n"
        "credentials:\n"
        "  ops:  # the ops team's key\n"
        f"    key_file: {target.keys.client_key}\n"
        "servers:\n"
        "  - name: db1  # primary database\n"
        "    host: 192.0.2.10\n"
        "    credentials: ops\n"
        "  - name: web1\n"
        "    host: 192.0.2.99  # old address, onboarding updates it\n"
        "    credentials: ops\n"
        "    labels: {team: web}\n"
    )
    request = OnboardRequest(
        name="web1",
        host=target.host,
        port=target.port,
        user=user.pw_name,
        password=Secret(PASSWORD),
        inventory=inventory,
        trust_on_first_use=True,
        credentials="monitoring",
    )
    onboard(request)
    text = inventory.read_text()
    assert "# fleet inventory -- keep this comment" in text
    assert "# primary database" in text and "# the ops team's key" in text
    loaded = load_inventory(inventory)
    assert loaded.servers["db1"].host == "192.0.2.10"
    web1 = loaded.servers["web1"]
    assert (web1.host, web1.port, web1.credentials) == ("127.0.0.1", target.port, "monitoring")
    assert dict(web1.labels) == {"team": "web"}  # what onboarding does not decide is kept
    assert loaded.credentials["monitoring"].key_file == tmp_path / "keys" / "stacksense_ed25519"
    assert loaded.credentials["ops"].key_file == target.keys.client_key


def test_onboarding_through_a_jump_server(
    tmp_path: Path, target: Sshd, user: pwd.struct_passwd, ssh_server: Sshd
) -> None:
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(ssh_server.known_hosts_line())
    inventory = tmp_path / "servers.yml"
    inventory.write_text(
        yaml.safe_dump(
            {
                "known_hosts": str(known_hosts),
                "credentials": {"bastion-key": {"key_file": str(ssh_server.keys.client_key)}},
                "servers": [
                    {
                        "name": "bastion",
                        "host": ssh_server.host,
                        "port": ssh_server.port,
                        "user": "root",
                        "credentials": "bastion-key",
                    }
                ],
            }
        )
    )
    request = OnboardRequest(
        name="web1",
        host=target.host,
        port=target.port,
        user=user.pw_name,
        password=Secret(PASSWORD),
        inventory=inventory,
        trust_on_first_use=True,
        jump="bastion",
    )
    assert onboard(request).key_added
    assert authorized_keys(user).exists()
    assert load_inventory(inventory).servers["web1"].jump == "bastion"


def test_a_key_already_used_by_the_credentials_entry_is_not_silently_replaced(
    tmp_path: Path, target: Sshd, user: pwd.struct_passwd
) -> None:
    inventory = tmp_path / "servers.yml"
    inventory.write_text(f"credentials:\n  default:\n    key_file: {target.keys.client_key}\n")
    request = OnboardRequest(
        name="web1",
        host=target.host,
        port=target.port,
        user=user.pw_name,
        password=Secret(PASSWORD),
        inventory=inventory,
        key=tmp_path / "other_key",
        trust_on_first_use=True,
    )
    with pytest.raises(OnboardError, match="already uses key .*--credentials NAME"):
        onboard(request)
    assert not authorized_keys(user).exists()


# ---------------------------------------------------------------- pure unit tests


def test_generated_key_is_openssh_ed25519_with_private_mode(tmp_path: Path) -> None:
    line = generate_ed25519(tmp_path / "k", "stacksense@test")
    assert (tmp_path / "k").stat().st_mode & 0o777 == 0o600
    # OpenSSH itself derives the same public key from the private file.
    derived = subprocess.run(
        ["ssh-keygen", "-y", "-f", str(tmp_path / "k")], check=True, capture_output=True, text=True
    ).stdout.split()[:2]
    assert line.split()[:2] == derived
    with pytest.raises(FileExistsError):  # never overwrites a key
        generate_ed25519(tmp_path / "k", "x")


@pytest.mark.parametrize(
    "line, problem",
    [
        (
            'command="rm -rf /" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0d'  # noqa: E501
            "h2l9GKJl x",
            "TYPE BASE64",
        ),
        (
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl $(reboot)",  # noqa: E501
            "comment",
        ),
        ("ssh-ed25519 not*base64", "base64"),
        ("ssh-dss AAAAB3NzaC1kc3M= x", "type"),
        (
            "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl x",
            "does not match",
        ),
        (
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\nx y",
            "single line",
        ),
    ],
)
def test_public_key_lines_are_validated(line: str, problem: str) -> None:
    with pytest.raises(KeyProblem, match=problem):
        validate_public_line(line)


def test_the_command_sent_to_the_host_never_contains_the_key(
    tmp_path: Path, target: Sshd, user: pwd.struct_passwd, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[str] = []
    real = paramiko.SSHClient.exec_command

    def recording(self: paramiko.SSHClient, command: str, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        sent.append(command)
        return real(self, command, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(paramiko.SSHClient, "exec_command", recording)
    onboard(
        OnboardRequest(
            name="web1",
            host=target.host,
            port=target.port,
            user=user.pw_name,
            password=Secret(PASSWORD),
            inventory=tmp_path / "servers.yml",
            known_hosts=tmp_path / "known_hosts",
            trust_on_first_use=True,
        )
    )
    key_b64 = (tmp_path / "keys" / "stacksense_ed25519.pub").read_text().split()[1]
    assert sent == [DEPLOY_COMMAND]  # one fixed string; the key went over stdin
    assert key_b64 in authorized_keys(user).read_text()
    assert all(key_b64 not in command for command in sent)


@pytest.mark.parametrize(
    "field_, value, message",
    [
        ("labels", {"bad-label": "x"}, "not a valid Prometheus label name"),
        ("module", "nosuch", "module 'nosuch' is not defined"),
        ("name", "web 1; rm", "server name"),
        ("host", "-oProxyCommand=x", "not a valid host"),
    ],
)
def test_bad_request_fails_before_any_connection(
    tmp_path: Path, field_: str, value: object, message: str
) -> None:
    kwargs: dict[str, Any] = {
        "name": "web1",
        "host": "192.0.2.1",
        "password": Secret("x"),
        "inventory": tmp_path / "servers.yml",
        "timeout_seconds": 0.5,
    }
    request = OnboardRequest(**{**kwargs, field_: value})
    with pytest.raises(OnboardError, match=message):
        onboard(request)
    assert not (tmp_path / "keys").exists()
