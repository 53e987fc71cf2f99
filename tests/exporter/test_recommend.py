"""The rule recommender on reports a host could send: odd values never break it."""

from __future__ import annotations

from exporter.recommend import RuleRecommender


def test_a_filesystem_without_a_usage_figure_is_still_named() -> None:
    report = {
        "filesystems": [
            {
                "mountpoint": "/srv",
                "used_percent": None,
                "device": "/dev/x",
                "largest": [{"path": "/srv/a", "bytes": 2048}],
            }
        ]
    }
    [finding] = RuleRecommender().recommend({}, report)
    assert finding.text == "/srv is nearly full: largest directories /srv/a (2.0 KiB)"


def test_an_empty_report_gives_no_findings() -> None:
    assert RuleRecommender().recommend({"alertname": "HostDiskFull"}, {}) == []


def test_actions_point_at_the_directory_and_the_process() -> None:
    gib = 1 << 30
    report = {
        "memory": {"total_bytes": 4 * gib, "available_bytes": 0.2 * gib, "used_ratio": 0.95},
        "processes": {
            "by_memory": [
                {
                    "pid": 42,
                    "user": "app",
                    "command": "java",
                    "rss_bytes": 3 * gib,
                    "cpu_percent": 1,
                }
            ],
            "by_cpu": [
                {
                    "pid": 7,
                    "user": "app",
                    "command": "ffmpeg",
                    "rss_bytes": 1 << 20,
                    "cpu_percent": 190,
                }
            ],
        },
        "load": {"load1": 9.0, "cpus": 2, "pressure": {}},
        "filesystems": [
            {
                "mountpoint": "/var",
                "used_percent": 97,
                "device": "/dev/sda2",
                "largest": [
                    {"path": "/var", "bytes": 9 * gib},
                    {"path": "/var/log", "bytes": 8 * gib},
                ],
            },
            {"mountpoint": "/data", "used_percent": 91, "device": "/dev/sdb", "largest": []},
        ],
    }
    actions = {
        f.kind + ":" + f.text.split()[0]: f.action for f in RuleRecommender().recommend({}, report)
    }
    assert actions["memory:memory"].startswith(
        "check whether java (pid 42) is expected to hold 3.0 GiB"
    )
    assert actions["disk:/var"].startswith("look in /var/log first: remove or rotate")
    assert actions["disk:/data"].startswith("look on /data (du -x -d 2): remove or rotate")
    assert actions["cpu:load"] == "check whether ffmpeg (pid 7) is doing expected work"
