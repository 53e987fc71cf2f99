"""Shared kit for the StackSense services (exporter, rules, alert_router).

One way to do each cross-cutting thing: config loading, durations, secrets,
retry backoff and Retry-After parsing, plus the ops endpoints.
"""
