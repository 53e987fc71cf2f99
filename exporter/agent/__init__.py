"""`stacksense-agent`: push a heartbeat (and this host's metrics) to the exporter.

For hosts the exporter cannot reach over SSH. It runs anywhere psutil does
(Linux, macOS, Windows). Delivery: every `interval` seconds; transient failures
(connection errors, timeouts, 5xx, 429) are retried with capped exponential
backoff and jitter, honouring Retry-After; a rejection (400, 401, 403, 404) is
not retried early — it is logged with what to fix and tried again at the
normal interval, since the exporter's inventory or token may be fixed later.
The token never appears in logs or errors.

Modules: `config` (settings), `host` (metrics and facts), `delivery` (send and
retry loop), `cli` (the command). Nothing is imported here, so that importing one
part does not pull in the others.
"""
