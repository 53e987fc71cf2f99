"""The router's own exceptions.

Error tree::

    ValueError
    └── ConfigError      the config is invalid; the message starts with the key path
        │                (the shared stacksense_common.config.ConfigError itself)
        └── ReceiverConfigError  one receiver's section (alert_router.notify.base)
    Exception
    └── InputError       an API request body is invalid; the message names the field
        └── LimitError   the request is over a documented limit (a 413, not a 400)
"""

from __future__ import annotations

# One ConfigError for every service: ConfigError(path, message), `path` the key path
# (e.g. route.routes[2].matchers[0]).
from stacksense_common.config import ConfigError

__all__ = ["ConfigError", "InputError", "LimitError"]


class InputError(Exception):
    """A request body is invalid; the message names what is wrong (becomes a 400)."""


class LimitError(InputError):
    """A request is over one of the documented limits (alert_router.limits); becomes a 413."""

    status = 413
