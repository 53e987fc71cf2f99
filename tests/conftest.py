"""Session-wide fixtures: real peers started on loopback and torn down."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.peers.sshd import Sshd, SshdKeys, sshd, sshd_available


@pytest.fixture(scope="session")
def ssh_keys(tmp_path_factory: pytest.TempPathFactory) -> SshdKeys:
    if not sshd_available():
        pytest.fail("sshd is not installed: run `make test`, which installs openssh-server")
    return SshdKeys.create(tmp_path_factory.mktemp("sshkeys"))


@pytest.fixture(scope="session")
def ssh_server(tmp_path_factory: pytest.TempPathFactory, ssh_keys: SshdKeys) -> Iterator[Sshd]:
    """One sshd on 127.0.0.1 shared by the tests that only need a working host."""
    with sshd(tmp_path_factory.mktemp("sshd"), ssh_keys) as server:
        yield server
