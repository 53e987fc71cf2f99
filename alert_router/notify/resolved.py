"""What a notifier sends given `send_resolved`, as Alertmanager decides it."""

from __future__ import annotations

import dataclasses

from alert_router.notify.base import NotificationData


def only_what_to_send(data: NotificationData, send_resolved: bool) -> NotificationData | None:
    """`data` minus resolved alerts when send_resolved is off; None when nothing is left."""
    if send_resolved or not data.resolved:
        return data if data.alerts else None
    firing = data.firing
    if not firing:
        return None
    return dataclasses.replace(data, alerts=firing, status="firing")
