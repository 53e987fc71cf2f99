"""The rule recommender on reports a host could send: odd values never break it."""

from __future__ import annotations

from exporter.recommend import RuleRecommender


def test_a_filesystem_without_a_usage_figure_is_still_named() -> None:
    report = {"filesystems": [{"mountpoint": "/srv", "used_percent": None, "device": "/dev/x",
                               "largest": [{"path": "/srv/a", "bytes": 2048}]}]}
    [finding] = RuleRecommender().recommend({}, report)
    assert finding.text == "/srv is nearly full: largest directories /srv/a (2.0 KiB)"


def test_an_empty_report_gives_no_findings() -> None:
    assert RuleRecommender().recommend({"alertname": "HostDiskFull"}, {}) == []
