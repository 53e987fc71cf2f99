"""`stacksense-router` commands: check-config, routes test, list-receivers, test-notify, render."""

from __future__ import annotations

import pytest
import yaml

from alert_router.cli import main
from tests.alert_router.harness import base_config
from tests.peers.webhook import webhook_receiver


@pytest.fixture
def config_file(tmp_path):
    def write(**overrides):
        path = tmp_path / "router.yml"
        path.write_text(yaml.safe_dump(base_config(tmp_path, **overrides)))
        return str(path)

    return write


ROUTES = {
    "route": {
        "receiver": "default",
        "routes": [
            {"matchers": ['severity="critical"'], "receiver": "pager", "continue": True},
            {"receivers_by_label": {"label": "server", "receivers": {"db-1": "dba"}}},
        ],
    },
    "receivers": [
        {"name": n, "webhook_configs": [{"url": "http://127.0.0.1:9/"}]}
        for n in ("default", "pager", "dba")
    ],
}


def test_check_config_ok_and_error(config_file, capsys, tmp_path):
    assert main(["-c", config_file(**ROUTES), "check-config"]) == 0
    assert "OK (3 receivers" in capsys.readouterr().out
    bad = config_file(route={"receiver": "default", "group_wiat": "1s"})
    assert main(["-c", bad, "check-config"]) == 2
    assert "route.group_wiat: unknown key" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        (["alertname=X", "server=web-1"], "default"),
        (["alertname=X", "server=db-1"], "dba"),
        (["alertname=X", "server=db-1", "severity=critical"], "pager,dba"),
    ],
)
def test_routes_test(config_file, capsys, labels, expected):
    path = config_file(**ROUTES)
    assert main(["-c", path, "routes", "test", *labels]) == 0
    assert capsys.readouterr().out.strip() == expected
    assert main(["-c", path, "routes", "test", *labels, "--expect", expected]) == 0
    assert main(["-c", path, "routes", "test", *labels, "--expect", "nobody"]) == 1


def test_routes_test_verbose_shows_group_key(config_file, capsys):
    assert main(["-c", config_file(**ROUTES), "routes", "test", "-v", "alertname=X"]) == 0
    assert "group_wait=30s" in capsys.readouterr().out


def test_list_receivers(config_file, capsys):
    assert main(["-c", config_file(**ROUTES), "list-receivers"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "default: webhook",
        "pager: webhook",
        "dba: webhook",
    ]


def test_test_notify_sends_a_sample_through_a_real_receiver(config_file, capsys):
    with webhook_receiver() as hook:
        path = config_file(receivers=[{"name": "default", "webhook_configs": [{"url": hook.url}]}])
        assert main(["-c", path, "test-notify", "default"]) == 0
        assert hook.received and hook.received[0]["receiver"] == "default"
        assert hook.received[0]["version"] == "4"
        hook.status = 503
        assert main(["-c", path, "test-notify", "default"]) == 1
        assert "FAILED (http_5xx)" in capsys.readouterr().err
        assert main(["-c", path, "test-notify", "nobody"]) == 2


def test_render(capsys):
    assert main(["render", "email_subject.j2"]) == 0
    assert "HighCpuUsage" in capsys.readouterr().out
    assert main(["render", "no-such-template"]) == 2
    # A template name on the command line is not the config's fault.
    assert capsys.readouterr().err.startswith("error: unknown template 'no-such-template'")


def test_a_receiver_config_error_is_a_config_error(config_file, capsys):
    bad = config_file(receivers=[{"name": "default", "webhook_configs": [{"urll": "x"}]}])
    assert main(["-c", bad, "check-config"]) == 2
    assert capsys.readouterr().err.startswith(
        f"error: config {bad}: receivers[0].webhook_configs[0].urll: unknown key (allowed:"
    )


def test_serve_on_a_port_in_use_is_one_line_and_exit_1(config_file, capsys):
    import socket

    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        code = main(["-c", config_file(), "serve", "--listen", f"127.0.0.1:{port}"])
    err = capsys.readouterr().err
    assert code == 1
    assert err == f"router: cannot listen on 127.0.0.1:{port}: address already in use\n"
