"""A realistic notification for `stacksense-router render` and test notifications."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alert_router.notify.base import AlertData, NotificationData


def sample_notification(*, now: datetime | None = None) -> NotificationData:
    """Two firing CPU alerts and one resolved disk alert, grouped by alertname."""
    now = now or datetime.now(UTC).replace(microsecond=0)
    gen = "http://prometheus.example.com:9090/graph?g0.expr=stacksense_cpu_usage_ratio+%3E+0.8"
    alerts = [
        AlertData(
            status="firing",
            labels={
                "alertname": "HighCpuUsage",
                "server": "web1",
                "instance": "web1",
                "severity": "warning",
                "team": "web",
            },
            annotations={
                "summary": "CPU usage on web1 is 93%",
                "description": "CPU usage has been above 80% for 5 minutes.",
            },
            starts_at=now - timedelta(minutes=12),
            ends_at=None,
            generator_url=gen,
            fingerprint="3b1f6c0a9d2e4f51",
        ),
        AlertData(
            status="firing",
            labels={
                "alertname": "HighCpuUsage",
                "server": "db1",
                "instance": "db1",
                "severity": "critical",
                "team": "data",
            },
            annotations={
                "summary": "CPU usage on db1 is 99%",
                "description": "CPU usage has been above 95% for 10 minutes.",
            },
            starts_at=now - timedelta(minutes=47),
            ends_at=None,
            generator_url=gen,
            fingerprint="8c02d7e5a1b94f60",
        ),
        AlertData(
            status="resolved",
            labels={
                "alertname": "HighCpuUsage",
                "server": "web2",
                "instance": "web2",
                "severity": "warning",
                "team": "web",
            },
            annotations={"summary": "CPU usage on web2 is back to 41%"},
            starts_at=now - timedelta(hours=2, minutes=5),
            ends_at=now - timedelta(minutes=3),
            generator_url=gen,
            fingerprint="51aa90e3c7d24b18",
        ),
    ]
    return NotificationData(
        receiver="ops-email",
        status="firing",
        alerts=alerts,
        group_labels={"alertname": "HighCpuUsage"},
        common_labels={"alertname": "HighCpuUsage"},
        common_annotations={},
        external_url="http://alerts.example.com:9818",
        group_key='{}:{alertname="HighCpuUsage"}',
    )
