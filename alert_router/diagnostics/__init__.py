"""Diagnostics in the first notification (docs/diagnostics.md)."""
