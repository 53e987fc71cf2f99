"""A reload in one process reaches the others sharing the store, as the config it accepted."""

from __future__ import annotations

import os
import stat

import yaml

from alert_router.app import create_app
from alert_router.state import RouterState


def _config(tmp_path, receivers):
    return {
        "route": {"receiver": receivers[0]},
        "receivers": [{"name": name} for name in receivers],
        "storage": {"path": str(tmp_path / "router.db")},
        "auth": {"allow_unauthenticated_writes": True},
    }


def _state(app) -> RouterState:
    result: RouterState = app.extensions["stacksense"]
    return result


def test_followers_load_the_published_text_even_after_the_file_broke(tmp_path):
    path = tmp_path / "router.yml"
    path.write_text(yaml.safe_dump(_config(tmp_path, ["a"])))
    leader = _state(create_app(path, start_background=False))
    follower = _state(create_app(path, start_background=False))

    path.write_text(yaml.safe_dump(_config(tmp_path, ["a", "extra"])))
    leader.reload()
    # The file is edited again, badly, before the follower notices the reload.
    path.write_text("route: {recever: typo}\n")
    follower.follow_reloads()
    assert set(follower.config.receivers) == {"a", "extra"}
    assert follower.generation == leader.generation

    follower.follow_reloads()  # nothing new: no second load
    assert set(follower.config.receivers) == {"a", "extra"}


def test_a_failed_reload_publishes_nothing(tmp_path):
    path = tmp_path / "router.yml"
    path.write_text(yaml.safe_dump(_config(tmp_path, ["a"])))
    leader = _state(create_app(path, start_background=False))
    follower = _state(create_app(path, start_background=False))
    path.write_text("route: {recever: typo}\n")
    try:
        leader.reload()
    except Exception as exc:  # noqa: BLE001
        assert "recever" in str(exc)
    else:
        raise AssertionError("a bad config reloaded")
    follower.follow_reloads()
    assert set(follower.config.receivers) == {"a"}
    assert set(leader.config.receivers) == {"a"}


def test_the_store_file_is_private(tmp_path):
    path = tmp_path / "router.yml"
    path.write_text(yaml.safe_dump(_config(tmp_path, ["a"])))
    create_app(path, start_background=False)
    mode = stat.S_IMODE(os.stat(tmp_path / "router.db").st_mode)
    assert mode & (stat.S_IRWXG | stat.S_IRWXO) == 0, oct(mode)
