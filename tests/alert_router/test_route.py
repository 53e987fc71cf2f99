"""The route tree: matchers (regex, negation), continue, inheritance, per-server receivers."""

from __future__ import annotations

import pytest

from alert_router.dispatch.route import build_route
from alert_router.errors import ConfigError
from alert_router.fingerprint import fingerprint
from alert_router.matchers import parse_matcher, parse_matchers

TREE = {
    "receiver": "default",
    "group_by": ["alertname"],
    "routes": [
        {
            "matchers": ['severity="critical"'],
            "receiver": "pager",
            "continue": True,
            "group_wait": "10s",
        },
        {"matchers": ['server=~"db-.*"', 'env!="staging"'], "receiver": "dba"},
        {
            "matchers": ['alertname!~"Watchdog|Info.*"'],
            "receiver": "ops",
            "routes": [{"match": {"team": "web"}, "receiver": "web"}],
        },
    ],
}


def receivers(labels: dict[str, str]) -> list[str]:
    return [r.receiver for r in build_route(TREE).match(labels)]


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({"alertname": "Watchdog"}, ["default"]),
        ({"alertname": "X", "server": "db-1"}, ["dba"]),
        ({"alertname": "X", "server": "db-1", "env": "staging"}, ["ops"]),
        ({"alertname": "X", "severity": "critical", "server": "db-1"}, ["pager", "dba"]),
        ({"alertname": "X", "team": "web"}, ["web"]),
        ({"alertname": "InfoThing", "team": "web"}, ["default"]),
    ],
)
def test_route_matching(labels, expected):
    assert receivers(labels) == expected


def test_settings_are_inherited_and_overridden():
    root = build_route(TREE)
    pager, dba = root.routes[0], root.routes[1]
    assert (root.group_wait, root.group_interval, root.repeat_interval) == (30, 300, 14400)
    assert pager.group_wait == 10 and pager.group_by == ("alertname",)
    assert dba.group_wait == 30


def test_group_key_names_route_and_group_labels():
    root = build_route({"receiver": "r", "group_by": ["alertname", "server"]})
    key = root.group_key({"alertname": "A", "server": "s1", "other": "x"})
    assert key == '0:{alertname="A", server="s1"}'
    every = build_route({"receiver": "r", "group_by": ["..."]})
    assert every.group_labels({"a": "1", "b": "2"}) == {"a": "1", "b": "2"}


def test_receivers_by_label_expands_into_child_routes():
    root = build_route(
        {
            "receiver": "ops",
            "receivers_by_label": {
                "label": "server",
                "receivers": {"web-1": "team-web", "db-1": ["dba", "dba-pager"]},
            },
        }
    )
    assert [r.receiver for r in root.match({"server": "web-1"})] == ["team-web"]
    assert [r.receiver for r in root.match({"server": "db-1"})] == ["dba", "dba-pager"]
    assert [r.receiver for r in root.match({"server": "other"})] == ["ops"]


@pytest.mark.parametrize(
    ("tree", "path"),
    [
        ({"group_by": ["a"]}, "route.receiver"),
        (
            {"receiver": "r", "routes": [{"matchers": ["bad matcher"]}]},
            "route.routes[0].matchers[0]",
        ),
        ({"receiver": "r", "routes": [{"matchers": ['a=~"("']}]}, "route.routes[0].matchers[0]"),
        ({"receiver": "r", "group_wait": "soon"}, "route.group_wait"),
        ({"receiver": "r", "routes": [{"recever": "x"}]}, "route.routes[0].recever"),
        ({"receiver": "r", "group_by": ["bad-name"]}, "route.group_by[0]"),
        ({"receiver": "r", "routes": [{"continue": "yes"}]}, "route.routes[0].continue"),
        ({"receiver": "r", "matchers": ['a="b"']}, "route.matchers"),
        (
            {"receiver": "r", "receivers_by_label": {"label": "server"}},
            "route.receivers_by_label.receivers",
        ),
    ],
)
def test_invalid_routes_name_the_key_path(tree, path):
    with pytest.raises(ConfigError) as err:
        build_route(tree)
    assert err.value.path == path


@pytest.mark.parametrize(
    ("text", "labels", "hit"),
    [
        ('a="1"', {"a": "1"}, True),
        ('a!="1"', {"a": "1"}, False),
        ('a=~"1|2"', {"a": "2"}, True),
        ('a=~"1"', {"a": "12"}, False),  # anchored like Prometheus
        ('a!~"x.*"', {"a": "xyz"}, False),
        ('a=""', {}, True),  # a missing label is the empty string
    ],
)
def test_matchers(text, labels, hit):
    assert parse_matcher(text).matches(labels) is hit


def test_parse_matchers_braces_and_commas_in_quotes():
    parsed = parse_matchers('{alertname="A,B", server=~"web-.*"}')
    assert [str(m) for m in parsed] == ['alertname="A,B"', 'server=~"web-.*"']


def test_fingerprint_matches_alertmanager():
    # Computed by Alertmanager 0.25 for the same label set (see test_alertmanager_peer).
    assert fingerprint({}) == "cbf29ce484222325"
    assert fingerprint({"a": "1"}) != fingerprint({"a": "2"})
